"""English and Chinese text for the web UI.

Static text (labels, headings, button captions) goes through Gradio's I18n: the browser picks the language.
Messages made by handlers (errors, notices, estimates) are translated here with `text(lang, key)`, the
language coming from the request's Accept-Language header (the same browser preference).
English setting labels and help come from the settings table (i2v.core.settings); only their Chinese text is here.
"""
from __future__ import annotations

from functools import lru_cache

from i2v.core.settings import SETTINGS

LANGS = ("en", "zh")

_ZH_SETTINGS = {s.name: (s.label_zh, s.help_zh) for s in SETTINGS}   # Chinese text lives in the settings table

EN = {
    "title": "# i2v — image to video (I2VGen-XL)",
    "subtitle": "Upload an image, describe the motion, press Generate. Settings that would not fit in GPU memory "
                "are adjusted before the run, never after a crash.",
    "tab_generate": "Generate",
    "tab_history": "History",
    "input_image": "Input image",
    "preset": "Preset",
    "preset_info": "★ marks the recommended preset for this device and image. Choosing one fills the sliders.",
    "advanced": "Advanced parameters",
    "generate": "Generate",
    "stop": "Stop",
    "info": "Info: effective parameters, seed, timings, load report",
    "load_report": "Load report",
    "notice": "Notices",
    "use_settings": "Use these settings",
    "device_panel": "### Device and memory",
    "estimate": "Memory estimate",
    "clear_cache": "Clear GPU cache",
    "unload": "Unload model",
    "refresh": "Refresh",
    "memory_figures": "Memory before / after",
    "history_pick": "Past outputs (newest first)",
    "history_details": "Details",
    "reuse": "Reuse these settings",
    "delete": "Delete",
    "confirm_delete": "Yes, delete the video and its sidecar",
    "cancel_delete": "Keep it",
    "status_line": "Status",
    "seed_random": "🎲 Random seed",
    "seed_reuse": "♻ Last seed",
    **{f"setting_{s.name}": s.label for s in SETTINGS},
    **{f"setting_{s.name}_help": s.help for s in SETTINGS},
}

ZH = {
    "title": "# i2v — 图生视频（I2VGen-XL）",
    "subtitle": "上传图片，描述运动，点击“生成”。显存放不下的设置会在运行前调整，而不是在崩溃之后。",
    "tab_generate": "生成",
    "tab_history": "历史记录",
    "input_image": "输入图片",
    "preset": "预设",
    "preset_info": "★ 表示针对本设备和图片推荐的预设。选择预设会填写下方参数。",
    "advanced": "高级参数",
    "generate": "生成",
    "stop": "停止",
    "info": "信息：实际参数、种子、耗时、加载报告",
    "load_report": "加载报告",
    "notice": "提示",
    "use_settings": "使用这些设置",
    "device_panel": "### 设备与显存",
    "estimate": "显存估算",
    "clear_cache": "清理显存缓存",
    "unload": "卸载模型",
    "refresh": "刷新",
    "memory_figures": "清理前 / 清理后",
    "history_pick": "历史输出（最新在前）",
    "history_details": "详情",
    "reuse": "复用这些设置",
    "delete": "删除",
    "confirm_delete": "确认删除视频及其信息文件",
    "cancel_delete": "保留",
    "status_line": "状态",
    "seed_random": "🎲 随机种子",
    "seed_reuse": "♻ 上次的种子",
    **{f"setting_{name}": label for name, (label, _) in _ZH_SETTINGS.items()},
    **{f"setting_{name}_help": help_ for name, (_, help_) in _ZH_SETTINGS.items()},
}

# Messages built by handlers at run time ({placeholders} are filled with str.format).
MESSAGES = {
    "en": {
        # memory words: "GPU memory" only on a machine that has a GPU
        "mem_cuda": "GPU memory", "mem_cpu": "memory",
        "device_kind_cuda": "GPU", "device_kind_cpu": "CPU (no GPU)",
        # the plan, one formatter per key (i2v.ui.format.PLAN_WORDS)
        "plan_offload_none": "all weights in {mem}",
        "plan_offload_model": "each part of the model moved into {mem} while it runs (model offload)",
        "plan_offload_group": "weights streamed from RAM (group offload)",
        "plan_offload_sequential": "weights moved in piece by piece from RAM (sequential offload, slowest)",
        "plan_cfg_split": "CFG halves run one after the other",
        "plan_chunks": "UNet run in chunks of {tokens} tokens (exact)",
        "plan_fp16": "fp16 weights",
        "plan_fp8": "fp8 weights (lossy)",
        "plan_decode": "VAE decodes {frames} frame(s) at a time",
        "plan_tiling": "VAE tiling (lossy)",
        "plan_off": "off", "plan_on": "on",
        "field_offload": "Weights placement", "field_cfg_split": "CFG split", "field_chunk_tokens": "UNet chunks",
        "field_weights_dtype": "Weight precision", "field_decode_chunk": "VAE decode chunk",
        "field_decode_chunk_size": "VAE decode chunk", "field_vae_tiling": "VAE tiling",
        "field_width": "Width", "field_height": "Height",
        "reason_fit": "the asked settings do not fit in {mem} with any plan",
        "reason_lossy": "no exact plan fits; this one changes the pixels slightly",
        "reason_time_budget": "to finish within the time budget",
        "reason_oom": "out of memory during the run",
        "recovered": "Recovered from low memory after {attempts} attempts.",
        "oom_mem": "Out of {mem} while {phase} ({attempts} attempt(s)); nothing was saved.",
        "generation_failed": "The generation failed; nothing was saved. Details are in logs/.",
        "cancelled_by_user": "Stopped: you pressed Stop; nothing was saved.",
        "phase_attempt": "retrying with less memory", "phase_text_encode": "encoding the prompt",
        "phase_image_encode": "encoding the image", "phase_denoise": "denoising", "phase_decode": "decoding frames",
        "phase_save": "writing the video", "phase_load": "loading the model",
        "progress_attempt": "Out of memory: retrying with less", "progress_text_encode": "Encoding prompt",
        "progress_image_encode": "Encoding image", "progress_denoise": "Denoising", "progress_decode": "Decoding frames",
        "progress_save": "Writing the video", "progress_load": "Loading model",
        "unit_steps": "steps", "unit_chunks": "chunks", "unit_calls": "calls",
        "model_status_not loaded": "Model not loaded yet: it loads on the first generation.",
        "model_status_loading": "Loading the model…",
        "model_status_ready": "Model ready: {model} on {device}.",
        "model_status_failed": "The model could not be loaded; details are in logs/.",
        "model_status_unknown": "Model status unknown.",
        "model_label": "Model",
        "tiny_banner": "Built-in tiny test model: its videos are random noise. Memory and time figures on this page "
                       "describe the real I2VGen-XL model.",
        "report_none": "The load report appears once the model is loaded.",
        "report_head": "Loaded {model} on {device} as {dtype} in {seconds} s.",
        "outcome_applied": "applied", "outcome_not supported": "not supported",
        "outcome_no effect at inference": "no effect at inference", "outcome_skipped": "skipped",
        "estimate_error": "Cannot estimate: {problem}",
        "busy_panel": "The generator is busy (loading the model or generating); try again when it is idle.",
        "unload_running": "A generation is running; press Stop first.",
        "reserved_warning": "PyTorch holds {reserved} reserved, over {share} of {total}: clear the cache or unload.",
        "preset_fits": "fits", "preset_fits_with_offload": "fits with weights in RAM",
        "preset_fits_sequential": "fits only with sequential offload (very slow)",
        "preset_fits_lossy": "fits only with a lossy technique", "preset_does_not_fit": "does not fit",
        "preset_custom": "Custom",
        "history_plan": "Plan",
        "timing_load": "loading", "timing_text_encode": "prompt", "timing_image_encode": "image",
        "timing_denoise": "denoising", "timing_decode": "decoding", "timing_save": "writing", "timing_total": "total",
        "stopped": "Stopped: the generation was cancelled and nothing was saved.",
        "seed_used": "Seed used: `{seed}` (♻ reuses it)",
        "toast_info": "Note", "toast_warning": "Please note", "toast_error": "Could not generate",
        "reused": "Settings restored; the seed is random again. That video used seed `{seed}`: type it in the "
                  "Seed box to repeat it exactly.",
        "reused_no_seed": "Settings restored; the seed is random.",
        "stopping": "Stopping at the next step…",
        "nothing_running": "Nothing is running.",
        "left_queue": "Nothing is running for you; a job of yours waiting in the queue (if any) was removed from it.",
        "unexpected": "Unexpected error; details are in logs/.",
        "oom_no_suggestion": "Nothing smaller is predicted to fit: press “Unload model” or close other GPU programs.",
        "oom_suggest": "These settings are predicted to fit: {values}. Press “Use these settings” to fill the sliders.",
        "plan_ran": "Ran with: {plan}.",
        "plan_will_run": "Plan: {plan}",
        "adjusted": "Adjusted {field}: asked {asked}, got {got} ({reason}).",
        "fallbacks": "Recovered from low memory after {attempts} attempts: {fallbacks}.",
        "estimate": "Predicted peak {peak:.1f} GiB / available {available:.1f} GiB ({label})",
        "estimate_fits": "fits",
        "estimate_offload": "fits, {offload}",
        "estimate_no_fit": "does not fit — it will be adjusted before the run",
        "estimate_unavailable": "Memory estimate unavailable.",
        "estimate_time": "about {minutes} for the steps ({speed})",
        "speed_measured": "from the measured speed of the last run",
        "speed_estimated": "estimated from the device's nominal speed",
        "device": "**{name}** ({kind}) · total {total} · free {free} · budget {budget}",
        "device_unavailable": "Device information unavailable.",
        "worker": "worker {gpu}: {status}{busy} (pid {pid}, {restarts} restarts)",
        "worker_node": " on {host} (Ray node {node}, {total} GiB)",
        "worker_busy": ", generating",
        "worker_status_not loaded": "model not loaded", "worker_status_loading": "loading the model",
        "worker_status_ready": "ready", "worker_status_failed": "model failed to load",
        "cleared": "Cache cleared.",
        "unloaded": "Model unloaded; it loads again on the next generation.",
        "memory_warning": "⚠️ {warning}",
        "before": "before",
        "now": "now",
        "label_predicted": "predicted", "label_calibrated": "calibrated",
        "after": "after",
        "history_empty": "No outputs yet.",
        "history_pick_first": "Choose an output first.",
        "confirm_question": "Delete **{name}** and its sidecar? This cannot be undone.",
        "deleted": "Deleted {name}.",
        "refused": "Refused: {name} is not an output of this app.",
        "missing": "{name} no longer exists.",
        "recommended": "recommended",
        "seconds": "≈{seconds}",
        "no_preset_fits": "No preset fits this device at full quality; settings will be reduced before the run.",
        "parameters": "Parameters",
        "timings": "Timings (s)",
        "seed": "Seed",
        "created": "Created",
        "metric_free": "free", "metric_driver_free": "driver free", "metric_reserved": "PyTorch reserved",
        "metric_allocated": "PyTorch allocated", "metric_used": "used", "metric_process": "workers hold",
        "metric_total": "total", "metric_released": "released",
    },
    "zh": {
        "mem_cuda": "显存", "mem_cpu": "内存",
        "device_kind_cuda": "显卡", "device_kind_cpu": "CPU（无显卡）",
        "plan_offload_none": "全部权重在{mem}中",
        "plan_offload_model": "模型各部分运行时才移入{mem}（模型卸载）",
        "plan_offload_group": "权重从内存流式加载（分组卸载）",
        "plan_offload_sequential": "权重从内存逐块移入（顺序卸载，最慢）",
        "plan_cfg_split": "CFG 两半依次运行",
        "plan_chunks": "UNet 按 {tokens} 个 token 分块运行（结果不变）",
        "plan_fp16": "fp16 权重",
        "plan_fp8": "fp8 权重（有损）",
        "plan_decode": "VAE 每次解码 {frames} 帧",
        "plan_tiling": "VAE 分块解码（有损）",
        "plan_off": "关", "plan_on": "开",
        "field_offload": "权重位置", "field_cfg_split": "CFG 分半", "field_chunk_tokens": "UNet 分块",
        "field_weights_dtype": "权重精度", "field_decode_chunk": "VAE 分段解码",
        "field_decode_chunk_size": "VAE 分段解码", "field_vae_tiling": "VAE 分块",
        "field_width": "宽度", "field_height": "高度",
        "reason_fit": "所请求的设置在任何方案下都放不进{mem}",
        "reason_lossy": "没有无损方案能放下；此方案会轻微改变画面",
        "reason_time_budget": "为了在时间预算内完成",
        "reason_oom": "运行时内存不足",
        "recovered": "内存不足，经过 {attempts} 次尝试后恢复。",
        "oom_mem": "{phase}时{mem}不足（共尝试 {attempts} 次），未保存任何文件。",
        "generation_failed": "生成失败，未保存任何文件。详情见 logs/ 目录。",
        "cancelled_by_user": "已停止：您点击了“停止”，未保存任何文件。",
        "phase_attempt": "减少内存后重试", "phase_text_encode": "编码提示词",
        "phase_image_encode": "编码图片", "phase_denoise": "去噪", "phase_decode": "解码帧",
        "phase_save": "写入视频", "phase_load": "加载模型",
        "progress_attempt": "内存不足：减少用量后重试", "progress_text_encode": "编码提示词",
        "progress_image_encode": "编码图片", "progress_denoise": "去噪", "progress_decode": "解码帧",
        "progress_save": "写入视频", "progress_load": "加载模型",
        "unit_steps": "步", "unit_chunks": "段", "unit_calls": "次",
        "model_status_not loaded": "模型尚未加载：首次生成时加载。",
        "model_status_loading": "正在加载模型…",
        "model_status_ready": "模型已就绪：{model}，运行于{device}。",
        "model_status_failed": "模型无法加载；详情见 logs/ 目录。",
        "model_status_unknown": "模型状态未知。",
        "model_label": "模型",
        "tiny_banner": "内置的微型测试模型：生成的视频是随机噪声。本页的内存和时间数据描述的是真正的 I2VGen-XL 模型。",
        "report_none": "模型加载后显示加载报告。",
        "report_head": "已加载 {model}，运行于{device}，精度 {dtype}，耗时 {seconds} 秒。",
        "outcome_applied": "已启用", "outcome_not supported": "不支持",
        "outcome_no effect at inference": "推理时无效果", "outcome_skipped": "已跳过",
        "estimate_error": "无法估算：{problem}",
        "busy_panel": "生成器正忙（正在加载模型或生成）；请在空闲时重试。",
        "unload_running": "正在生成；请先点击“停止”。",
        "reserved_warning": "PyTorch 保留了 {reserved}，超过 {total} 的 {share}：请清理缓存或卸载模型。",
        "preset_fits": "可以运行", "preset_fits_with_offload": "权重放在内存中可以运行",
        "preset_fits_sequential": "仅顺序卸载时可运行（很慢）",
        "preset_fits_lossy": "仅使用有损技术时可运行", "preset_does_not_fit": "放不下",
        "preset_custom": "自定义",
        "history_plan": "运行方案",
        "timing_load": "加载", "timing_text_encode": "提示词", "timing_image_encode": "图片",
        "timing_denoise": "去噪", "timing_decode": "解码", "timing_save": "写入", "timing_total": "总计",
        "stopped": "已停止：生成已取消，未保存任何文件。",
        "seed_used": "使用的种子：`{seed}`（♻ 可再次使用）",
        "toast_info": "提示", "toast_warning": "请注意", "toast_error": "无法生成",
        "reused": "已恢复设置；种子重新设为随机。该视频使用的种子是 `{seed}`：在“随机种子”框中填入即可完全重现。",
        "reused_no_seed": "已恢复设置；种子为随机。",
        "stopping": "将在下一步停止…",
        "nothing_running": "当前没有正在运行的任务。",
        "left_queue": "当前没有正在运行的任务；您在队列中等待的任务（如有）已移出队列。",
        "unexpected": "发生意外错误；详情见 logs/ 目录。",
        "oom_no_suggestion": "没有更小的设置预计能放下：请点击“卸载模型”或关闭其他占用显卡的程序。",
        "oom_suggest": "预计可以运行的设置：{values}。点击“使用这些设置”即可填入。",
        "plan_ran": "运行方式：{plan}。",
        "plan_will_run": "运行方案：{plan}",
        "adjusted": "已调整 {field}：请求 {asked}，实际 {got}（{reason}）。",
        "fallbacks": "显存不足，经过 {attempts} 次尝试后恢复：{fallbacks}。",
        "estimate": "预测峰值 {peak:.1f} GiB / 可用 {available:.1f} GiB（{label}）",
        "estimate_fits": "可以运行",
        "estimate_offload": "可以运行，{offload}",
        "estimate_no_fit": "放不下 — 运行前会自动调整",
        "estimate_unavailable": "无法估算显存。",
        "estimate_time": "去噪约需 {minutes}（{speed}）",
        "speed_measured": "按上次运行实测速度计算",
        "speed_estimated": "按设备标称速度估算",
        "device": "**{name}**（{kind}）· 总量 {total} · 空闲 {free} · 预算 {budget}",
        "device_unavailable": "无法获取设备信息。",
        "worker": "工作进程 {gpu}：{status}{busy}（pid {pid}，重启 {restarts} 次）",
        "worker_node": "，位于 {host}（Ray 节点 {node}，{total} GiB）",
        "worker_busy": "，生成中",
        "worker_status_not loaded": "模型未加载", "worker_status_loading": "正在加载模型",
        "worker_status_ready": "就绪", "worker_status_failed": "模型加载失败",
        "cleared": "缓存已清理。",
        "unloaded": "模型已卸载；下次生成时会重新加载。",
        "memory_warning": "⚠️ {warning}",
        "before": "清理前",
        "now": "当前",
        "label_predicted": "预测", "label_calibrated": "已校准",
        "after": "清理后",
        "history_empty": "还没有输出。",
        "history_pick_first": "请先选择一个输出。",
        "confirm_question": "删除 **{name}** 及其信息文件？此操作无法撤销。",
        "deleted": "已删除 {name}。",
        "refused": "已拒绝：{name} 不是本应用的输出文件。",
        "missing": "{name} 已不存在。",
        "recommended": "推荐",
        "seconds": "约 {seconds}",
        "no_preset_fits": "没有预设能以完整质量在本设备上运行；运行前会降低设置。",
        "parameters": "参数",
        "timings": "耗时（秒）",
        "seed": "种子",
        "created": "创建时间",
        "metric_free": "可用", "metric_driver_free": "驱动空闲", "metric_reserved": "PyTorch 保留",
        "metric_allocated": "PyTorch 已分配", "metric_used": "已用", "metric_process": "工作进程占用",
        "metric_total": "总量", "metric_released": "已释放",
    },
}

@lru_cache(maxsize=1)
def i18n_table():
    """Gradio's I18n over EN/ZH, built on first use (importing this module does not import Gradio)."""
    import gradio as gr

    return gr.I18n(en=EN, zh=ZH)


def __getattr__(name: str):
    if name == "I18N":
        return i18n_table()
    raise AttributeError(name)


def t(key: str):
    """Static, translated-in-the-browser text for a component label, value or heading."""
    if key not in EN:
        raise KeyError(key)
    return i18n_table()(key)


def lang_of(request) -> str:
    """'zh' when the browser prefers Chinese (Accept-Language), else 'en'."""
    headers = getattr(request, "headers", None) or {}
    try:
        accept = headers.get("accept-language", "") or ""
    except Exception:  # noqa: BLE001 - odd header objects: fall back to English
        accept = ""
    first = accept.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def text(lang: str, key: str, **values) -> str:
    """A run-time message in `lang` (English when missing)."""
    template = MESSAGES.get(lang, MESSAGES["en"]).get(key) or MESSAGES["en"][key]
    return template.format(**values) if values else template
