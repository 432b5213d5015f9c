"""Serving and process control: the web server's refusals (bind address, login, port, request size), the
login file, and what start_app.sh / restart.sh say when they cannot go on."""

EN = {
    "auth_on_command_line": "--auth on a command line can be read by every local user (ps). Put USER:PASSWORD in "
                            "a file readable by you only (chmod 600) and pass --auth-file PATH, or set I2V_AUTH.",
    "auth_bad_form": "--auth must look like USER:PASSWORD (both non-empty)",
    "auth_both_given": "give either --auth (I2V_AUTH) or --auth-file (I2V_AUTH_FILE), not both",
    "auth_file_unreadable": "--auth-file {path}: cannot read it ({reason})",
    "auth_file_not_regular": "--auth-file {path}: not a regular file",
    "auth_file_shared": "--auth-file {path}: group or others may read it (mode {mode}); run: chmod 600 {path}",
    "auth_file_not_one_line": "--auth-file {path}: must hold exactly one line USER:PASSWORD",
    "serve_needs_password": "refusing to serve on {host} without a password: anyone on the network could use this "
                            "GPU and read or delete your videos. Add --auth USER:PASSWORD (or set I2V_AUTH), or keep "
                            "the default --host 127.0.0.1.",
    "serve_bad_host": "cannot serve on {host}: {reason}. Use an address of this machine, e.g. --host 127.0.0.1 or "
                      "--host ::1.",
    "serve_bad_port": "cannot serve on {host} port {port}: {reason}. Use an address of this machine, e.g. --host "
                      "127.0.0.1 or --host ::1.",
    "serve_port_busy": "port {port} on {host} is already in use by {who}. Stop it (`bash start_app.sh stop` if it "
                       "is this app), or choose another port with --port.",
    "port_holder_process": "process {pid} ({command})",
    "port_holder_other": "another program",
    "http_too_large": "Request too large: at most {mib} MiB per request (all files together)",
    "http_too_many_logins": "Too many failed logins: try again in {seconds} s",
    "queue_full": "Queue is full. Max size is {max_size} and size is {size}.",
    "control_port_not_number": "port must be a number 1..65535, got '{value}'",
    "control_port_busy": "port {port} is already in use by {who}. Stop it or choose another --port.",
    "control_gpu_held": "{problem} An earlier instance may still hold it: run restart.sh, or see nvidia-smi for "
                        "other programs. Use --force to start anyway.",
    "control_gpu_forced": "{problem} Starting anyway (--force).",
    "control_gpu_too_small": "GPU 0 has only {free_gib} GiB free; the smallest preset ({preset}) needs about "
                             "{need_gib} GiB.",
    "control_survived_kill": "pid {pid} survived SIGKILL",
    "control_exited_at_start": "the app exited during start-up; last lines of {log}:\n{tail}",
    "control_did_not_start": "the app did not start",
    "control_error": "error: {text}",
    "control_already_running": "already running at {url} (pid {pid}); bash restart.sh restarts it, bash "
                               "start_app.sh stop stops it",
    "control_systemd": "this app is managed by systemd (unit {unit}): use `{restart}`, `systemctl {scope}stop "
                       "{unit}` or `systemctl {scope}status {unit}` instead of start_app.sh / restart.sh",
    "pid_file_no_pid": "PID file {pid_file} holds no PID ('{text}'); removed it",
    "pid_file_stale": "stale PID file: pid {pid} is not running; removed {pid_file}",
    "pid_file_not_ours": "PID file names {process}, which is not this app's main.py in {root}; left that process "
                         "alone and removed {pid_file}",
}

ZH = {
    "auth_on_command_line": "命令行上的 --auth 会被本机所有用户看到（ps）。请把 USER:PASSWORD 写进只有你能读的文件"
                            "（chmod 600）并用 --auth-file PATH 传入，或设置 I2V_AUTH。",
    "auth_bad_form": "--auth 的格式须为 USER:PASSWORD（两者都不能为空）",
    "auth_both_given": "--auth（I2V_AUTH）和 --auth-file（I2V_AUTH_FILE）只能给一个",
    "auth_file_unreadable": "--auth-file {path}：无法读取（{reason}）",
    "auth_file_not_regular": "--auth-file {path}：不是普通文件",
    "auth_file_shared": "--auth-file {path}：同组或其他用户可以读取（权限 {mode}）；请运行：chmod 600 {path}",
    "auth_file_not_one_line": "--auth-file {path}：必须只有一行 USER:PASSWORD",
    "serve_needs_password": "拒绝在 {host} 上无密码提供服务：网络上的任何人都能使用这块 GPU，并查看或删除你的视频。"
                            "请加上 --auth USER:PASSWORD（或设置 I2V_AUTH），或保留默认的 --host 127.0.0.1。",
    "serve_bad_host": "无法在 {host} 上提供服务：{reason}。请使用本机的地址，例如 --host 127.0.0.1 或 --host ::1。",
    "serve_bad_port": "无法在 {host} 的端口 {port} 上提供服务：{reason}。请使用本机的地址，例如 --host 127.0.0.1 或 "
                      "--host ::1。",
    "serve_port_busy": "{host} 上的端口 {port} 已被 {who} 占用。请停止它（若是本应用，用 `bash start_app.sh stop`），"
                       "或用 --port 换一个端口。",
    "port_holder_process": "进程 {pid}（{command}）",
    "port_holder_other": "其他程序",
    "http_too_large": "请求过大：每个请求最多 {mib} MiB（所有文件合计）",
    "http_too_many_logins": "登录失败次数过多：请 {seconds} 秒后再试",
    "queue_full": "队列已满：最多 {max_size} 个，当前 {size} 个。",
    "control_port_not_number": "端口必须是 1..65535 之间的数字，当前为 '{value}'",
    "control_port_busy": "端口 {port} 已被 {who} 占用。请停止它，或用 --port 换一个端口。",
    "control_gpu_held": "{problem} 之前的实例可能仍占用着显存：请运行 restart.sh，或用 nvidia-smi 查看其他程序。"
                        "用 --force 可强制启动。",
    "control_gpu_forced": "{problem} 仍然启动（--force）。",
    "control_gpu_too_small": "GPU 0 仅剩 {free_gib} GiB 可用；最小的预设（{preset}）约需 {need_gib} GiB。",
    "control_survived_kill": "进程 {pid} 在 SIGKILL 后仍未退出",
    "control_exited_at_start": "应用在启动过程中退出；{log} 的最后几行：\n{tail}",
    "control_did_not_start": "应用未能启动",
    "control_error": "错误：{text}",
    "control_already_running": "已在运行：{url}（进程 {pid}）；bash restart.sh 可重启，bash start_app.sh stop 可停止",
    "control_systemd": "本应用由 systemd 管理（单元 {unit}）：请使用 `{restart}`、`systemctl {scope}stop {unit}` 或 "
                       "`systemctl {scope}status {unit}`，而不是 start_app.sh / restart.sh",
    "pid_file_no_pid": "PID 文件 {pid_file} 中没有 PID（'{text}'）；已删除",
    "pid_file_stale": "过期的 PID 文件：进程 {pid} 未在运行；已删除 {pid_file}",
    "pid_file_not_ours": "PID 文件指向 {process}，它不是 {root} 中本应用的 main.py；未触动该进程，已删除 {pid_file}",
}
