"""Downloads and the Models panel (i2v/downloads.py, i2v/ui/models_panel.py, main.py download): failures and
run-time lines in EN/ZH (the catalogue), and the panel's static captions (PAGE_EN/PAGE_ZH, merged by i2v.i18n)."""

EN = {
    "download_offline": "Download of {repo}: HF_HUB_OFFLINE is set, so nothing is fetched; unset it, or place a "
                        "diffusers folder by hand and pass --model /path/to/it.",
    "download_no_space": "Download of {repo}: {needed_gb} GB still needed but only {free_gb} GB free in {folder}; "
                         "free some space or point HF_HOME at a bigger disk.",
    "download_damaged": "Download: {file} is damaged ({why}).",
    "download_cancelled": "Download of {repo} cancelled; what was fetched is kept and the next download resumes "
                          "from there.",
    "download_failed": "Download of {repo} failed: {detail}. Run it again: it resumes where it stopped.",
    "download_delete_refused": "Delete: {path} is not {repo}'s entry in the Hugging Face cache; nothing was deleted.",
    "download_not_a_repo": "Download: {value} is not a family alias or a repo id (a folder needs no download; a tiny "
                           "model is built offline).",
    "download_plan": "{repo}@{commit}: {files} files ({variant} weights), {total}, {needed} still to fetch, into "
                     "{folder}",
    "download_ready": "ready: {snapshot}\nstart the app with: python main.py --model {spec}",
    "models_state_absent": "not downloaded",
    "models_state_partial": "paused: {done} of {total} GB on disk (Download resumes)",
    "models_state_downloading": "downloading {done} of {total} GB at {rate} MB/s, {eta} left",
    "models_state_ready": "ready, {size} GB on disk",
    "models_state_damaged": "damaged: {files} (Download fetches them again)",
    "models_deleted": "Deleted {repo} from the Hugging Face cache ({size} GB freed).",
    "models_confirm_delete": "Tick 'I am sure' to delete {repo}.",
    "models_started": "Downloading {repo}…",
    "models_by_hand": "Offline or behind a firewall: copy a diffusers folder (with model_index.json) to this "
                      "machine and start with `--model /path/to/it`.",
}

ZH = {
    "download_offline": "下载 {repo}：已设置 HF_HUB_OFFLINE，不会联网下载；请取消该设置，或手动放置 diffusers 文件夹并用 --model /路径 指定。",
    "download_no_space": "下载 {repo}：还需要 {needed_gb} GB，但 {folder} 只剩 {free_gb} GB；请清理空间或把 HF_HOME 指向更大的磁盘。",
    "download_damaged": "下载：{file} 已损坏（{why}）。",
    "download_cancelled": "已取消下载 {repo}；已下载的部分会保留，下次下载从那里继续。",
    "download_failed": "下载 {repo} 失败：{detail}。请重新运行，会从中断处继续。",
    "download_delete_refused": "删除：{path} 不是 {repo} 在 Hugging Face 缓存中的目录，未删除任何文件。",
    "download_not_a_repo": "下载：{value} 不是模型别名或仓库名（本地文件夹无需下载；微型模型离线构建）。",
    "download_plan": "{repo}@{commit}：{files} 个文件（{variant} 权重），共 {total}，还需下载 {needed}，保存到 {folder}",
    "download_ready": "就绪：{snapshot}\n启动应用：python main.py --model {spec}",
    "models_state_absent": "未下载",
    "models_state_partial": "已暂停：磁盘上已有 {done} / {total} GB（点击“下载”继续）",
    "models_state_downloading": "正在下载 {done} / {total} GB，{rate} MB/s，剩余 {eta}",
    "models_state_ready": "就绪，占用磁盘 {size} GB",
    "models_state_damaged": "已损坏：{files}（点击“下载”重新获取）",
    "models_deleted": "已从 Hugging Face 缓存删除 {repo}（释放 {size} GB）。",
    "models_confirm_delete": "请勾选“确认”后再删除 {repo}。",
    "models_started": "正在下载 {repo}…",
    "models_by_hand": "离线或有防火墙：把 diffusers 文件夹（含 model_index.json）复制到本机，并用 `--model /路径` 启动。",
}

PAGE_EN = {
    "models_panel": "Models",
    "models_table_model": "Model",
    "models_table_repo": "Hugging Face repo",
    "models_table_state": "State",
    "models_pick": "Model to act on",
    "models_download": "Download",
    "models_cancel": "Cancel",
    "models_delete": "Delete",
    "models_sure": "I am sure",
}

PAGE_ZH = {
    "models_panel": "模型",
    "models_table_model": "模型",
    "models_table_repo": "Hugging Face 仓库",
    "models_table_state": "状态",
    "models_pick": "要操作的模型",
    "models_download": "下载",
    "models_cancel": "取消",
    "models_delete": "删除",
    "models_sure": "确认",
}
