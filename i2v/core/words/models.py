"""Where the model comes from (the tiny stand-in's banner, how to get real weights, a folder or repo that cannot
be used), and the structure checks of the exact chunked wrappers (the installed diffusers is not the code they
follow): shown when a model cannot be loaded or a plan cannot be installed."""

_HINT_EN = ("To use the real model, download it once with network access: `python main.py download {alias}` (or "
            "`huggingface-cli download {repo}`; about {size_gib} GiB), or pass `--model /path/to/a/diffusers/folder`, "
            "then restart with `--model {spec}` or `--model {repo}`.")
_HINT_ZH = ("要使用真正的模型，请在联网时下载一次：`python main.py download {alias}`（或 `huggingface-cli download "
            "{repo}`；约 {size_gib} GiB），或传入 `--model /path/to/a/diffusers/folder`，然后用 `--model {spec}` 或 "
            "`--model {repo}` 重新启动。")

EN = {
    "model_real_weights_hint": _HINT_EN,
    "model_tiny_banner": "Running the built-in TINY {title}test model ({reason}): its output is random noise, not a "
                         "real video. " + _HINT_EN,
    "model_tiny_reason_offline": "{repo} is not in the local cache and the Hub is unreachable",
    "model_not_cached": "{target} is not in the local Hugging Face cache and the Hub is unreachable. " + _HINT_EN,
    "model_not_a_folder": "{path} is not a diffusers model folder (no model_index.json)",
    "chunk_diffusers_version": "the {what} is written for diffusers {supported}x; diffusers {installed} is installed",
    "chunk_source_differs": "diffusers' {name} differs from the code the chunked {what} follows",
    "chunk_structure": "the {what} is not the structure the chunked {follows} follows: {problems}",
    "chunk_unet_layers": "TemporalConvLayer has layers {layers}, expected {expected}",
    "chunk_expected_class": "expected {expected}, got {got}",
    "chunk_vae_cache": "diffusers' Wan VAE caches {cached} frames, not {expected}",
    "chunk_no_temporal_upsampling": "the Wan decoder has no temporal upsampling: nothing to sub-chunk",
    "chunk_hook_replaces_forward": "the diffusers hook {hook} on the Wan decoder replaces its forward",
}

ZH = {
    "model_real_weights_hint": _HINT_ZH,
    "model_tiny_banner": "正在运行内置的微型{title}测试模型（{reason}）：输出是随机噪声，不是真正的视频。" + _HINT_ZH,
    "model_tiny_reason_offline": "{repo} 不在本地缓存中，且无法连接 Hub",
    "model_not_cached": "{target} 不在本地 Hugging Face 缓存中，且无法连接 Hub。" + _HINT_ZH,
    "model_not_a_folder": "{path} 不是 diffusers 模型文件夹（没有 model_index.json）",
    "chunk_diffusers_version": "{what} 是按 diffusers {supported}x 编写的；当前安装的是 diffusers {installed}",
    "chunk_source_differs": "diffusers 的 {name} 与分块 {what} 所依照的代码不同",
    "chunk_structure": "{what} 的结构与分块 {follows} 所依照的不同：{problems}",
    "chunk_unet_layers": "TemporalConvLayer 的层为 {layers}，应为 {expected}",
    "chunk_expected_class": "应为 {expected}，实际为 {got}",
    "chunk_vae_cache": "diffusers 的 Wan VAE 缓存 {cached} 帧，而不是 {expected} 帧",
    "chunk_no_temporal_upsampling": "Wan 解码器没有时间上采样：无需再分块",
    "chunk_hook_replaces_forward": "Wan 解码器上的 diffusers 钩子 {hook} 替换了它的 forward",
}
