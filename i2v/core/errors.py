"""One vocabulary of user-facing failures: `I2VError(key, **params)`, its text looked up by key in English or
Chinese. Nothing is ever recognised by matching English text; the worker sends keys and params across the
pipe. A message that names a field names it by its label in the reader's language.

Stdlib only (i2v.core). A key not in the catalogue is treated as ready-made English text (older call sites),
shown as it is in both languages.
"""
from __future__ import annotations

from typing import Any, Mapping

LANGS = ("en", "zh")
MAX_ECHO_CHARS = 40        # a bad value is echoed back, cut to this length

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "text": "{text}",
        "problems": "{problems}",
        "field_not_number": "{label}: must be a number, got {value}.",
        "field_not_finite": "{label}: must be a finite number, got {value}.",
        "field_not_whole": "{label}: must be a whole number, got {value}.",
        "field_too_small": "{label}: must be at least {minimum}, got {value}.",
        "field_frames_rule": "{label}: this model takes {step}k+1 frames, got {value}; try {below} or {above}.",
        "field_too_large": "{label}: must be at most {maximum}, got {value}.",
        "field_not_choice": "{label}: must be one of {choices}, got {value}.",
        "field_not_text": "{label}: must be text.",
        "field_bad_text": "{label}: contains characters that are not valid text (a lone UTF-16 surrogate); "
                          "remove them.",
        "field_not_bool": "{label}: must be true or false, got {value}.",
        "field_too_long": "{label}: at most {limit} characters, got {length}.",
        "field_unknown": "Unknown parameter(s): {names}.",
        "prompt_missing": "{label}: please describe the motion you want.",
        "image_missing": "{label}: please provide an input image.",
        "image_empty": "{label}: the file is empty.",
        "image_file_too_big": "{label}: the file is {size_mib} MiB; the limit is {limit_mib} MiB.",
        "image_not_image": "{label}: not an image this app can read (PNG, JPEG, WebP, GIF, BMP, TIFF).",
        "image_too_many_pixels": "{label}: {width}x{height} is {megapixels} megapixels; the limit is {limit} "
                                 "megapixels.",
        "image_too_many_pixels_count": "{label}: the image has {megapixels} megapixels; the limit is {limit} "
                                       "megapixels.",
        "image_damaged": "{label}: the file is truncated or damaged.",
        "image_not_found": "{label}: file not found: {name}.",
        "image_converted": "{label}: {what} converted to RGB.",
        "image_first_frame": "{label}: animated image, its first frame is used.",
        "image_cropped": "{label}: {width}x{height} is wider than {ratio}:1, so its sides are cropped; the video is "
                         "{video_width}x{video_height}.",
        "image_padded": "{label}: {width}x{height} is wider than {ratio}:1, so it is padded with bars to keep all of "
                        "it; the video is {video_width}x{video_height}.",
        "out_path_exists": "{path} already exists; choose another output path.",
        "busy": "The generator is busy: wait for the running job or press Stop.",
        "disk_full": "Not enough disk space in {folder}/ ({free_mib} MiB free); nothing was saved.",
        "outputs_not_writable": "Cannot write to the outputs folder {folder}/ (permission denied); nothing was saved.",
        "device_cannot_run": "This device cannot run it: {detail}",
        "ray_missing": "The Ray backend needs Ray: pip install -e .[ray]",
        "ray_unreachable": "Cannot reach the Ray cluster at {address}: start it with `ray start --head` (see README).",
        "plan_invalid": "Plan: {detail}",
        "model_unknown": "Model: {value} is not a model this app knows; choose one of {choices}, a Hugging Face "
                         "repo id (owner/name) or a local diffusers folder.",
        "model_unavailable": "Model: {value} cannot be used here: {detail}",
        "model_busy": "Model: cannot switch while a generation runs or waits; wait for it or press Stop first.",
        "model_switch_unsupported": "Model: this backend cannot switch models while running ({detail}); restart "
                                    "the app with --model {value}.",
    },
    "zh": {
        "text": "{text}",
        "problems": "{problems}",
        "field_not_number": "{label}：必须是数字（当前为 {value}）。",
        "field_not_finite": "{label}：必须是有限的数字（当前为 {value}）。",
        "field_not_whole": "{label}：必须是整数（当前为 {value}）。",
        "field_too_small": "{label}：不能小于 {minimum}（当前为 {value}）。",
        "field_frames_rule": "{label}：该模型的帧数须为 {step}k+1（当前为 {value}），可改为 {below} 或 {above}。",
        "field_too_large": "{label}：不能大于 {maximum}（当前为 {value}）。",
        "field_not_choice": "{label}：必须是 {choices} 之一（当前为 {value}）。",
        "field_not_text": "{label}：必须是文本。",
        "field_bad_text": "{label}：含有无效的文本字符（孤立的 UTF-16 代理字符），请删除。",
        "field_not_bool": "{label}：必须是 true 或 false（当前为 {value}）。",
        "field_too_long": "{label}：最多 {limit} 个字符（当前 {length} 个）。",
        "field_unknown": "未知参数：{names}。",
        "prompt_missing": "{label}：请描述想要的画面运动。",
        "image_missing": "{label}：请先上传输入图片。",
        "image_empty": "{label}：文件是空的。",
        "image_file_too_big": "{label}：文件大小 {size_mib} MiB，上限为 {limit_mib} MiB。",
        "image_not_image": "{label}：不是本应用能读取的图片（PNG、JPEG、WebP、GIF、BMP、TIFF）。",
        "image_too_many_pixels": "{label}：{width}x{height} 共 {megapixels} 百万像素，上限为 {limit} 百万像素。",
        "image_too_many_pixels_count": "{label}：图片共 {megapixels} 百万像素，上限为 {limit} 百万像素。",
        "image_damaged": "{label}：文件不完整或已损坏。",
        "image_not_found": "{label}：找不到文件 {name}。",
        "image_converted": "{label}：{what} 已转换为 RGB。",
        "image_first_frame": "{label}：动图只使用第一帧。",
        "image_cropped": "{label}：{width}x{height} 的宽高比超过 {ratio}:1，两侧会被裁掉；视频为 {video_width}x{video_height}。",
        "image_padded": "{label}：{width}x{height} 的宽高比超过 {ratio}:1，已补黑边以保留整张图；视频为 {video_width}x{video_height}。",
        "out_path_exists": "{path} 已存在，请换一个输出路径。",
        "busy": "生成器正忙：请等待当前任务完成，或点击“停止”。",
        "disk_full": "{folder}/ 磁盘空间不足（剩余 {free_mib} MiB），未保存任何文件。",
        "outputs_not_writable": "无法写入输出文件夹 {folder}/（没有权限），未保存任何文件。",
        "device_cannot_run": "此设备无法运行该设置：{detail}",
        "ray_missing": "Ray 后端需要安装 Ray：pip install -e .[ray]",
        "ray_unreachable": "无法连接 {address} 的 Ray 集群：请先用 `ray start --head` 启动（见 README）。",
        "plan_invalid": "运行方案：{detail}",
        "model_unknown": "模型：本应用不认识 {value}；请选择 {choices} 之一、Hugging Face 仓库名（owner/name）或本地 diffusers 文件夹。",
        "model_unavailable": "模型：{value} 在此无法使用：{detail}",
        "model_busy": "模型：有生成任务正在运行或排队，无法切换；请等待其完成或先点击“停止”。",
        "model_switch_unsupported": "模型：此后端运行时无法切换模型（{detail}）；请用 --model {value} 重新启动应用。",
    },
}


def echo(value: Any) -> str:
    """A bad value as shown back to the user: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS - 1] + "…"


def field_label(field: str, lang: str) -> str:
    """A field's label in lang, from the settings table (the image and unknown names as they are)."""
    from i2v.core.settings import FIELD_LABELS

    labels = FIELD_LABELS.get(field)
    if labels is None:
        return field
    return labels[1] if lang == "zh" else labels[0]


def message(key: str, params: Mapping[str, Any], lang: str = "en") -> str:
    catalogue = MESSAGES.get(lang, MESSAGES["en"])
    template = catalogue.get(key) or MESSAGES["en"][key]
    values = dict(params)
    if "field" in values:
        values["label"] = field_label(str(values["field"]), lang)
    if key == "problems":
        separator = "；" if lang == "zh" else " "
        values["problems"] = separator.join(p.text(lang) for p in values["problems"])
    return template.format(**values)


class I2VError(Exception):
    """A failure the user can act on: a key into MESSAGES and its parameters (plain, picklable values)."""

    def __init__(self, key: str, **params: Any):
        if key not in MESSAGES["en"]:           # ready-made English text
            key, params = "text", {"text": key}
        self.key, self.params = key, params
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        return message(self.key, self.params, lang)

    def __reduce__(self):                       # pickles as (key, params) across the worker's pipe
        return _rebuild, (type(self), self.key, self.params)


def _rebuild(cls, key, params):
    error = cls.__new__(cls)
    I2VError.__init__(error, key, **params)
    return error


def several(problems: list[I2VError], cls: type[I2VError] = I2VError) -> I2VError:
    """One error of class cls carrying several problems (all of a form's bad fields at once)."""
    return cls("problems", problems=list(problems))
