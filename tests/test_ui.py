"""The UI's pure helpers and its API surface (no browser): deletion safety, formatting, translations."""
from __future__ import annotations

import json
import re

import gradio as gr
import pytest

from i2v import i18n, ui, video
from i2v.core.settings import SETTINGS
from i2v.core.settings import SETTINGS_BY_NAME as S_BY_NAME
from i2v.service import GenerationService


def make_output(folder, stem="video_20260101_000000"):
    folder.mkdir(parents=True, exist_ok=True)
    mp4 = folder / f"{stem}{video.VIDEO_SUFFIX}"
    mp4.write_bytes(b"mp4")
    video.sidecar_path(mp4).write_text("{}", encoding="utf-8")
    return mp4


def test_delete_removes_the_video_and_its_sidecar(tmp_path):
    outputs = tmp_path / "outputs"
    mp4 = make_output(outputs)
    removed = ui.delete_output(outputs, str(mp4))
    assert set(removed) == {mp4.resolve(), video.sidecar_path(mp4).resolve()}
    assert not mp4.exists() and not video.sidecar_path(mp4).exists()


@pytest.mark.parametrize("relative", ["../elsewhere/video_x.mp4", "sub/video_x.mp4", "video_x.json", "notes.txt"])
def test_delete_refuses_anything_but_an_mp4_directly_in_outputs(tmp_path, relative):
    outputs = tmp_path / "outputs"
    make_output(outputs)
    target = outputs / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("keep me")
    with pytest.raises(ValueError):
        ui.delete_output(outputs, str(target))
    assert target.exists()


def test_delete_refuses_a_symlink_that_leaves_outputs(tmp_path):
    outputs = tmp_path / "outputs"
    make_output(outputs)
    secret = tmp_path / "secret.mp4"
    secret.write_text("keep me")
    link = outputs / "video_link.mp4"
    link.symlink_to(secret)
    with pytest.raises(ValueError):
        ui.delete_output(outputs, str(link))
    assert secret.exists()


def test_every_static_key_has_both_languages_and_settings_come_from_the_table():
    assert set(i18n.EN) == set(i18n.ZH)
    assert set(i18n.MESSAGES["en"]) == set(i18n.MESSAGES["zh"])
    for setting in SETTINGS:
        assert i18n.EN[f"setting_{setting.name}"] == setting.label
        assert i18n.EN[f"setting_{setting.name}_help"] == setting.help


@pytest.mark.parametrize("header, lang", [("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,en;q=0.9", "en"), ("", "en"),
                                          ("fr-FR,zh;q=0.5", "en"), ("zh-TW", "zh")])
def test_language_follows_the_browser(header, lang):
    class Request:
        headers = {"accept-language": header}

    assert i18n.lang_of(Request()) == lang
    assert i18n.lang_of(None) == "en"


def test_estimate_line_and_memory_bars():
    line = ui.estimate_markdown({"peak_gib": 10.44, "available_gib": 22.0, "fits": True, "label": "predicted",
                                 "offload": "none", "adjustments": []}, "en")
    assert "Needs 10.4 GiB with this plan (predicted) · budget 22.0 GiB" in line     # two figures, one verdict
    over = ui.estimate_markdown({"peak_gib": 30, "available_gib": 22.0, "fits": False, "label": "calibrated",
                                 "adjustments": [{"field": "num_frames", "asked": 32, "got": 16, "reason": "memory"}]},
                                "zh")
    assert "按此方案需要 30.0 GiB" in over and "预算 22.0 GiB" in over and "帧数" in over
    cleared = {"cleared": True, "free_before_bytes": 2 * ui.GIB, "free_after_bytes": 3 * ui.GIB,
               "after": {"total_gib": 24.0, "warning": "PyTorch holds a lot"}}
    bars = ui.memory_html(cleared, "en")
    assert 'aria-label="free (before): 2.0 GiB"' in bars and 'aria-label="free (after): 3.0 GiB"' in bars
    assert "24.0 GiB" in bars and "PyTorch" not in bars      # nothing reserved: no warning
    crowded = {"total_gib": 24.0, "reserved_gib": 21.0, "free_gib": 2.0,
               "warning": "the service's English words never reach the page"}
    for lang, words in (("en", "PyTorch holds 21.0 GiB reserved"), ("zh", "PyTorch 保留了 21.0 GiB")):
        warned = ui.memory_html(crowded, lang)
        assert words in warned and "80%" in warned and "English words" not in warned, warned
    assert ui.memory_html({"before": {"reserved_gib": 1.0}, "after": {"reserved_gib": 0.0}}, "en").count("role=") == 2


def test_preset_choices_mark_the_recommended_one():
    status = {"recommended": "fast", "presets": [
        {"name": "fast", "label": "Fast preview / 快速预览", "status": "fits", "status_label": "fits",
         "peak_gib": 9.5, "seconds_estimate": 30.0, "values": {}},
        {"name": "high", "label": "High / 高质量", "status": "does_not_fit", "status_label": "does not fit",
         "peak_gib": 40.0, "seconds_estimate": None, "values": {}}]}
    choices = ui.preset_choices(status, "en")
    assert choices[0][0].startswith("★ Fast preview / 快速预览 (recommended)") and choices[0][1] == "fast"
    assert "does not fit" in choices[1][0] and not choices[1][0].startswith("★")


def test_api_endpoints(tmp_path):
    from i2v.runner import LocalRunner
    from i2v.service import GenerationService

    demo = ui.build_ui(GenerationService(LocalRunner("tiny"), tmp_path / "outputs"))   # nothing is loaded
    names = {d.api_name for d in demo.fns.values() if d.api_name}
    assert {"generate", "cancel", "model_status", "server_info", "clear_cache", "memory", "unload",
            "history", "queue", "cancel_job"} <= names
    generate = next(d for d in demo.fns.values() if d.api_name == "generate")
    from i2v.core.settings import SETTINGS

    params = {p["parameter_name"]: p["python_type"]["type"]
              for p in demo.get_api_info()["named_endpoints"]["/generate"]["parameters"]}
    assert list(params) == ["image", *(s.name for s in SETTINGS)]           # one per settings row, in order
    assert params["num_frames"] == params["num_inference_steps"] == params["fps"] == params["seed"] == "int"
    assert params["guidance_scale"] == "float" and params["prompt"] == "str"
    assert "pad" in params["image_fit"] and "1024" in params["resolution"]
    assert len(generate.inputs) == 1 + len(SETTINGS)
    returns = {name.strip("/"): [str(r["label"]) for r in endpoint["returns"]]
               for name, endpoint in demo.get_api_info()["named_endpoints"].items()}
    assert returns["generate"] == ["video", "info"] and returns["cancel"] == ["message"]      # names, not value_N
    assert returns["model_status"] == ["status", "load_report"] and returns["status"] == ["result"]
    assert isinstance(demo, gr.Blocks) and ui.launch_kwargs()["i18n"] is i18n.I18N


# --- the generate handler with a stand-in service: notices, OOM suggestion, never a raw exception -------------
class FakeRequest:
    session_hash = "session-1"

    def __init__(self, lang="en-US"):
        self.headers = {"accept-language": lang}


class FakeResult:
    def __init__(self, path, info):
        self.video_path, self._info = path, info
        self.input_notes = []

    def info(self):
        return self._info


class FakeService(GenerationService):
    """The real service (the tiny model, never loaded: its panels answer from the memory model) whose generate
    returns or raises `outcome`; history, cancel and has_job are stand-ins the tests steer."""

    def __init__(self, tmp_path, outcome):
        from i2v.runner import LocalRunner

        super().__init__(LocalRunner("tiny"), tmp_path)
        self.outcome = outcome

    def model_state(self):
        return {"status": "ready", "message": "", "spec": "fake", "banner": None, "report": None}

    def generate(self, image, values, progress=None, owner=None):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def history(self):
        return []

    def cancel(self, owner=None):
        return owner in getattr(self, "running_for", ())

    def has_job(self, owner):
        return owner in getattr(self, "running_for", ())


def handlers(service):
    demo = ui.build_ui(service)
    return {d.fn.__name__: d.fn for d in demo.fns.values() if getattr(d, "fn", None) is not None}


def run_generate(fns, lang="en-US"):
    request = FakeRequest(lang)
    args = (object(), "a cat", "", 256, 3, 8, 2, 9.0, 1)
    try:
        result, error = fns["generate"](*args, request=request, progress=lambda *a, **k: None), None
    except gr.Error as exc:
        result, error = None, exc
    return result, error, fns["after_generate"](request)


def test_adjustments_and_fallbacks_become_notices(tmp_path):
    info = {"adjustments": [{"field": "num_frames", "asked": 32, "got": 16, "reason": "out-of-memory fallback"}],
            "attempts": 2, "fallbacks": ["VAE decode chunk 1"]}
    fns = handlers(FakeService(tmp_path, FakeResult(tmp_path / "video_x.mp4", info)))
    result, error, after = run_generate(fns)
    assert error is None and result[1] is info
    notice, button, suggestion = after[:3]
    assert "Adjusted Frames: asked 32, got 16" in notice and "after 2 attempts" in notice
    assert button["visible"] is False and suggestion == {}


def test_oom_shows_the_suggestion_and_its_button(tmp_path):
    from i2v.core.errors import OutOfMemoryFailure

    failure = OutOfMemoryFailure.of("denoise", 1, "cuda", {"phase": "denoise", "attempts": [{}]},
                                    {"resolution": 256, "num_frames": 8, "offload": "model", "prompt": "a cat"})
    from i2v.core.words.plan_text import mem

    service = FakeService(tmp_path, failure)
    fns = handlers(service)
    _, error, after = run_generate(fns)
    kind = service.device_info()["kind"]           # "GPU memory" only where there is a GPU
    assert f"Out of {mem('en', kind)} while denoising" in str(error) and "Frames 8" in str(error)
    notice, button, suggestion = after[:3]
    assert "Use these settings" in notice and button["visible"] is True
    assert suggestion["num_frames"] == 8
    filled = fns["use_suggestion"](suggestion)
    assert filled[0]["value"] == 256 and filled[1]["value"] == 8
    _, error_zh, _ = run_generate(fns, "zh-CN,zh")
    assert f"{mem('zh', kind)}不足" in str(error_zh)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyError("x"), ZeroDivisionError()])
def test_unexpected_errors_never_show_a_class_name(tmp_path, exc):
    fns = handlers(FakeService(tmp_path, exc))
    _, error, after = run_generate(fns)
    assert "Unexpected error" in str(error)
    assert type(exc).__name__ not in str(error) + after[0] and "Traceback" not in str(error)


def test_failures_reach_the_page_without_class_names(tmp_path):
    from i2v.core.errors import GenerationFailed

    fns = handlers(FakeService(tmp_path, GenerationFailed("generation_failed", detail="RuntimeError: boom")))
    _, error, after = run_generate(fns)
    assert "The generation failed" in str(error) and "RuntimeError" not in str(error) + after[0]
    assert ui.clean_message("torch.OutOfMemoryError: CUDA out of memory") == "CUDA out of memory"


def test_device_panel_lists_every_gpu_worker():
    from i2v.ui import device_markdown

    info = {"name": "GPU", "kind": "cuda", "total_bytes": 8 * 2**30, "free_bytes": 2**30, "budget_bytes": 2**30,
            "workers": [{"gpu": "0", "status": "ready", "busy": True, "pid": 11, "restarts": 2},
                        {"gpu": "1", "status": "not loaded", "busy": False, "pid": 12, "restarts": 0}]}
    shown = device_markdown(info, "en")
    assert "worker 0: ready, generating (process 11, 2 restarts)" in shown
    assert "worker 1: model not loaded (process 12, 0 restarts)" in shown
    assert "模型未加载" in device_markdown(info, "zh") and "not loaded" not in device_markdown(info, "zh")
    assert "（进程 11，" in device_markdown(info, "zh") and "pid" not in device_markdown(info, "zh")


def test_service_messages_are_translated_by_key_for_chinese_browsers():
    """Messages travel as keys and params, never as English text matched back by patterns."""
    import pickle

    from i2v.core.request import RequestError, build_request

    with pytest.raises(RequestError) as info:
        build_request((64, 64), prompt="x", num_frames=1000, resolution=300)
    error = pickle.loads(pickle.dumps(info.value))      # as it crosses the worker's pipe
    zh = error.text("zh")
    assert "分辨率（短边）：必须是" in zh and "帧数：不能大于 64（当前为 1000）" in zh and "must" not in zh
    assert error.text("en") == str(info.value) and "Frames: must be at most 64" in str(info.value)

def test_stop_drops_a_waiting_job_only_when_none_of_mine_runs(tmp_path):
    """Stop on the page: a running job of mine is told to stop (no queue token); with none running, a new
    token (whose change makes the page cancel this tab's queued job) and the message naming the queue."""
    service = FakeService(tmp_path, None)
    fns = handlers(service)
    request = FakeRequest("en-US")
    service.running_for = {request.session_hash}
    assert "Stopping" in fns["cancel"](request)
    token, message = fns["leave_queue"](request)
    assert token == gr.update() and message == gr.update()
    service.running_for = {"another-session"}
    assert "Nothing is running" in fns["cancel"](request)
    first, message = fns["leave_queue"](request)
    second, _ = fns["leave_queue"](request)
    assert first != second and "queue" in message
    assert "队列" in fns["leave_queue"](FakeRequest("zh-CN"))[1]


def test_stop_of_a_job_that_ends_before_the_second_call_keeps_the_stopping_message(tmp_path):
    """CI caught it: the running job stopped between Stop's two calls, and "Stopping…" was overwritten by
    "left the queue" (a job that ran did not leave any queue)."""
    service = FakeService(tmp_path, None)
    fns = handlers(service)
    request = FakeRequest("en-US")
    service.running_for = {request.session_hash}
    assert "Stopping" in fns["cancel"](request)
    service.running_for = set()                       # the job ended at its next step, before leave_queue
    assert fns["leave_queue"](request) == (gr.update(), gr.update())
    first, message = fns["leave_queue"](request)      # the next Stop, with nothing running: the queue words
    assert first != gr.update() and "queue" in message


# --- message lifecycle, seeds, progress words (issue 13) ---------------------------------------------------------
def test_the_users_own_stop_is_a_neutral_notice_on_the_page_and_an_error_for_api_clients(tmp_path):
    from i2v.core.errors import GenerationCancelled

    fns = handlers(FakeService(tmp_path, GenerationCancelled("cancelled_during", phase="denoise")))
    request = FakeRequest()
    args = (object(), "a cat", "", 256, 3, 8, 2, 9.0, 1)
    kept = fns["generate_page"](*args, batch=1, request=request, progress=lambda *a, **k: None)
    assert all(update == gr.update() for update in kept)          # the last video stays; no red error
    notice = fns["after_generate"](request)[0]
    assert notice.startswith("ℹ️ Stopped") and "**" not in notice and "step 3" not in notice
    with pytest.raises(gr.Error, match="cancelled"):
        fns["generate"](*args, request=request, progress=lambda *a, **k: None)


def test_a_new_generate_clears_the_last_runs_notices_and_the_used_seed_is_shown(tmp_path):
    info = {"seed": 4242, "adjustments": []}
    fns = handlers(FakeService(tmp_path, FakeResult(tmp_path / "video_x.mp4", info)))
    result, error, after = run_generate(fns)
    assert error is None and "4242" in after[3] and "Seed used" in after[3]
    assert "使用的种子" in run_generate(fns, "zh-CN")[2][3]
    assert fns["clear_notices"]() == ("", "", gr.update(visible=False), "")


def test_seed_buttons_draw_a_new_seed_or_put_back_the_last_one():
    from i2v.ui.handlers import Handlers

    assert Handlers.random_seed() == -1
    assert Handlers.reuse_seed({"seed": 77}) == 77
    assert Handlers.reuse_seed({}) == gr.update() and Handlers.reuse_seed(None) == gr.update()
    assert Handlers.reuse_seed({"seed": "77; rm -rf"}) == gr.update()      # info is whatever the page holds


class ProgressService(FakeService):
    def generate(self, image, values, progress=None, owner=None):
        from i2v.service import ProgressUpdate

        progress(ProgressUpdate("load", 0, 0, 0.0))
        progress(ProgressUpdate("denoise", 3, 10, 0.5))
        return self.outcome


@pytest.mark.parametrize("lang, words", [("en-US", ("Loading model", "Denoising", "steps")),
                                         ("zh-CN", ("加载模型", "去噪", "步"))])
def test_progress_names_each_phase_in_the_users_language(tmp_path, lang, words):
    seen = []
    fns = handlers(ProgressService(tmp_path, FakeResult(tmp_path / "video_x.mp4", {})))
    fns["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, 1, batch=1, request=FakeRequest(lang),
                         progress=lambda *a, **k: seen.append((a, k)))
    assert seen[0][1]["desc"] == words[0] and seen[0][0] == (0.0,)
    assert seen[1][0] == ((3, 10),) and seen[1][1] == {"desc": words[1], "unit": words[2]}


def test_status_for_api_clients_is_data_with_the_tiny_banner_once():
    from i2v.ui.format import status_data, status_markdown

    state = {"status": "ready", "spec": "tiny", "message": "loaded", "banner": "tiny model: noise",
             "report": {"model": "tiny", "device": "cpu", "dtype": "float32", "kind": "tiny"}}
    data = status_data(state, "en")
    assert data["status"] == "ready" and data["tiny"] is True and data["device"] == "cpu"
    assert data["text"].count("tiny test model") == 1 and "**" not in data["text"]
    zh = status_markdown(state, "zh")
    assert "微型测试模型" in zh and "CPU（无显卡）" in zh and "ready" not in zh


def test_moving_a_slider_off_the_presets_values_shows_custom(tmp_path):
    from i2v.configs import load_presets

    fns = handlers(FakeService(tmp_path, None))
    fast = next(p for p in load_presets() if p.id == "fast")
    values = [fast.resolution, fast.num_frames, fast.fps, fast.num_inference_steps, fast.guidance_scale]
    assert fns["on_sliders"]("fast", None, *values) == gr.update()
    assert fns["on_sliders"]("fast", None, *[str(v) for v in values]) == gr.update()     # as the page may send
    values[1] += 1
    assert fns["on_sliders"]("fast", None, *values) == gr.update(value="custom")
    assert fns["on_preset"]("custom", None) == [gr.update()] * 5       # choosing Custom changes nothing
    choices = ui.preset_choices({"presets": [{"name": "fast", "label_en": "Fast", "label_zh": "快速"}]}, "zh")
    assert choices[-1] == ("自定义", "custom") and choices[0][0] == "快速"


class HistoryService(FakeService):
    def history(self):
        return [{"video_path": "/out/video_1.mp4", "input_image": "/out/video_1.input.png", "seed": 99, "parameters": {
            "prompt": "a boat", "negative_prompt": "", "resolution": 256, "num_frames": 4, "fps": 8,
            "num_inference_steps": 3, "guidance_scale": 7.0}}]


def test_reuse_restores_every_setting_with_the_seed_and_says_so(tmp_path):
    """A1111's behaviour (issue 28): Reuse brings the seed back too, so Generate repeats that video."""
    fns = handlers(HistoryService(tmp_path, None))
    out = fns["reuse"]("/out/video_1.mp4", FakeRequest())
    assert out[0]["value"] == "/out/video_1.input.png"                   # the image it was made from
    assert out[1]["value"] == "a boat" and out[4]["value"] == 4           # prompt, …, frames
    assert out[8]["value"] == 99 and "`99`" in out[-2] and "seed" in out[-2]
    assert "种子 `99`" in fns["reuse"]("/out/video_1.mp4", FakeRequest("zh-CN"))[-2]


def test_load_report_names_each_optimisation_in_words_and_no_exception_text():
    from i2v.ui.format import report_markdown

    state = {"report": {"model": "tiny", "device": "cpu", "dtype": "float32", "load_seconds": 1.2, "outcomes": [
        {"name": "gradient checkpointing (unet)", "status": "not supported",
         "detail": "ValueError: I2VGenXLUNet does not support gradient checkpointing"},
        {"name": "gradient checkpointing (vae)", "status": "no effect at inference", "detail": "saves nothing"},
        {"name": "attention", "status": "applied", "detail": "PyTorch SDPA"}]}}
    en, zh = report_markdown(state, "en"), report_markdown(state, "zh")
    assert "gradient checkpointing (vae): no effect at inference" in en     # honest: it saves nothing
    assert "ValueError" not in en + zh and "I2VGenXLUNet" not in en + zh
    assert "梯度检查点 (unet)" in zh and "推理时无效果" in zh and "省显存注意力" in zh and "attention" not in zh



class SeedService(FakeService):
    """Records the seed of each run; the third run is stopped when stop_at is 3."""

    def __init__(self, tmp_path, stop_at=None):
        super().__init__(tmp_path, None)
        self.seeds, self.stop_at = [], stop_at

    def generate(self, image, values, progress=None, owner=None):
        from i2v.core.errors import GenerationCancelled

        self.seeds.append(values["seed"])
        if len(self.seeds) == self.stop_at:
            raise GenerationCancelled("cancelled_during", phase="denoise")
        return FakeResult(self.outputs_dir / f"video_{len(self.seeds)}.mp4", {"seed": values["seed"]})


def test_a_batch_runs_consecutive_seeds_and_a_stop_ends_it(tmp_path):
    service = SeedService(tmp_path)
    fns = handlers(service)
    request = FakeRequest()
    path, info = fns["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, 41, batch=4, request=request,
                                      progress=lambda *a, **k: None)
    assert service.seeds == [41, 42, 43, 44] and path.endswith("video_4.mp4") and info["seed"] == 44
    assert "`41`, `42`, `43`, `44`" in fns["after_generate"](request)[3]
    random_start = SeedService(tmp_path)
    handlers(random_start)["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, -1, batch=3, request=request,
                                            progress=lambda *a, **k: None)
    first = random_start.seeds[0]
    assert random_start.seeds == [(first + i) % 2**32 for i in range(3)] and first != -1
    stopped = SeedService(tmp_path, stop_at=3)
    fns = handlers(stopped)
    fns["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, 7, batch=8, request=request,
                         progress=lambda *a, **k: None)
    assert stopped.seeds == [7, 8, 9]                       # the Stop ended the batch
    notice, _, _, used = fns["after_generate"](request)[:4]
    assert notice.startswith("ℹ️ Stopped") and "`7`, `8`" in used
    for bad in (0, 9, 2.5, "many", float("nan")):
        with pytest.raises(gr.Error, match="Videos per click"):
            fns["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, 7, batch=bad, request=request,
                                 progress=lambda *a, **k: None)


def test_the_time_left_follows_the_pace_of_the_steps_run_so_far():
    from i2v.service import ProgressUpdate
    from i2v.ui.handlers import StepClock

    now = [100.0]
    clock = StepClock(lambda: now[0])
    assert clock.seconds_left(ProgressUpdate("load", 0, 0, 0.0)) is None
    assert clock.seconds_left(ProgressUpdate("denoise", 1, 10, 0.1)) is None       # the clock starts
    now[0] += 4.0
    assert clock.seconds_left(ProgressUpdate("denoise", 3, 10, 0.3)) == pytest.approx(14.0)   # 2 s a step, 7 left
    now[0] += 1.0
    assert clock.seconds_left(ProgressUpdate("decode", 1, 4, 0.9)) is None          # a new phase, a new clock
    now[0] += 0.5
    assert clock.seconds_left(ProgressUpdate("decode", 2, 4, 0.95)) == pytest.approx(1.0)


@pytest.mark.parametrize("seconds", [5, 59.6, 89, 91, 103, 119, 121, 3600])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_preset_label_and_the_estimate_write_the_same_time_the_same_way(seconds, lang):
    import re

    from i2v.ui.format import estimate_markdown, preset_choices

    estimate = {"peak_gib": 3.0, "available_gib": 8.0, "fits": True, "offload": "none", "device": "cuda",
                "plan": None, "seconds_estimate": seconds, "speed": "estimated"}
    panel = estimate_markdown(estimate, lang)
    label = preset_choices({"recommended": "a", "presets": [{"name": "a", "label": "A", "status": "fits",
                                                             "peak_gib": 3.0, "seconds_estimate": seconds}]}, lang)[0][0]
    written = re.search(r"(\d+ (?:s|min|秒|分钟))", label).group(1)
    assert written in panel and "3.0 GiB" in label


@pytest.mark.parametrize("kind", ["cuda", "cpu"])
def test_the_cache_button_says_gpu_only_on_a_machine_with_one(tmp_path, kind):
    class Service(FakeService):
        def device_info(self):
            return {"kind": kind}

    demo = ui.build_ui(Service(tmp_path, None))
    button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "i2v-clear-cache")
    key = json.loads(button.value.removeprefix("__i18n__"))["key"]     # Gradio's translation marker
    assert key == ("clear_cache" if kind == "cuda" else "clear_cache_cpu")
    assert ("GPU" in i18n.EN[key]) == (kind == "cuda") and ("显存" in i18n.ZH[key]) == (kind == "cuda")


# --- issue 28 part A: one stable verdict, a preset box never blank, device words, Stop's last words ------------
def test_the_budget_holds_still_while_free_memory_drifts_and_follows_a_real_change():
    from i2v.ui.budget_hold import BudgetHold

    hold, gib = BudgetHold(step=ui.GIB // 2, rise_steps=2), ui.GIB
    readings = [13.1, 12.98, 13.3, 13.05, 13.4]                     # drift around 13 GiB: one verdict
    held = [hold.settle(int(r * gib)) / gib for r in readings]
    assert held == [13.0, 12.5, 12.5, 12.5, 12.5] and hold.moved == (13 * gib, int(12.5 * gib))
    assert all(h <= r for h, r in zip(held, readings))             # never plans with memory that is gone
    assert hold.settle(int(21.6 * gib)) == int(21.5 * gib)         # a real rise: followed
    assert hold.settle(int(12.0 * gib)) == 12 * gib                # a real drop: followed at once


def test_the_held_budget_reaches_the_estimate_and_its_move_is_said_in_words(tmp_path):
    from i2v.gpu import DeviceInfo

    service = FakeService(tmp_path, None)
    live = {"free": 20.3}
    service.advisor.device = lambda: DeviceInfo("cpu", 0, "sim", 32 * ui.GIB, int(live["free"] * ui.GIB),
                                                int(live["free"] * ui.GIB))
    fns = handlers(service)              # build_ui installs the hold over this device
    request = FakeRequest()
    values = (None, 256, 3, 8, 2, 9.0)
    first = fns["on_estimate"](*values, request)
    assert "budget 20.0 GiB" in first and "moved" not in first
    live["free"] = 20.4                                  # drift: the same two figures, no note
    assert fns["on_estimate"](*values, request) == first
    live["free"] = 11.2                                  # other programs took memory: the move is said
    moved = fns["on_estimate"](*values, request)
    assert "budget 11.0 GiB" in moved and "The budget moved from 20.0 to 11.0 GiB" in moved
    assert "预算 11.0 GiB" in handlers(service)["on_estimate"](*values, FakeRequest("zh-CN"))   # one hold per service
    assert service.advisor.device().budget_bytes == 11 * ui.GIB     # the clamp plans with the same figure


def test_the_preset_box_always_shows_a_preset_or_custom(tmp_path):
    from i2v.ui.format import CUSTOM_PRESET

    service = FakeService(tmp_path, None)
    service.presets_status = lambda size=None: {"recommended": None, "presets": [
        {"name": "fast", "label_en": "Fast", "status": "does_not_fit", "values": {"num_frames": 8}}]}
    fns = handlers(service)
    box = fns["on_load"](FakeRequest())[2]
    assert box["value"] == CUSTOM_PRESET                       # none fits: Custom, not blank
    assert fns["on_image"](None, None, FakeRequest())["value"] == CUSTOM_PRESET
    assert fns["on_sliders"](None, None, 256, 8, 8, 2, 9.0) == gr.update(value=CUSTOM_PRESET)


def test_without_a_gpu_no_word_says_gpu_memory(tmp_path):
    plan = {"offload": "none", "cfg_split": False, "decode_chunk": 1}
    entry = {"video_path": "video_1.mp4", "parameters": {"prompt": "x", **plan}, "plan": plan,
             "load_report": {"device": "cpu"}}
    for lang, words in (("en", "GPU memory"), ("zh", "显存")):
        assert words not in ui.format.history_markdown(entry, lang)
        assert words in ui.format.history_markdown({**entry, "load_report": {"device": "cuda"}}, lang)
    cleared = {"cleared": True, "driver_free_before_bytes": 2 * ui.GIB, "driver_free_after_bytes": 3 * ui.GIB,
               "free_before_bytes": 2 * ui.GIB, "free_after_bytes": 3 * ui.GIB}
    assert "driver free" in ui.memory_html(cleared, "en", "cuda")
    assert "driver free" not in ui.memory_html(cleared, "en", "cpu") and "驱动" not in ui.memory_html(cleared, "zh", "cpu")
    info = {"seed": 3, "adjustments": [], "plan": plan, "plan_words": "all weights in GPU memory"}
    fns = handlers(FakeService(tmp_path, FakeResult(tmp_path / "video_x.mp4", info)))   # the suite's CPU device
    _, shown = fns["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, 1, batch=1, request=FakeRequest(),
                                    progress=lambda *a, **k: None)
    assert "GPU" not in shown["plan_words"] and "all weights in memory" in shown["plan_words"]


def test_after_stop_the_page_says_stopped_and_the_old_video_leaves(tmp_path):
    from i2v.core.errors import GenerationCancelled

    fns = handlers(FakeService(tmp_path, GenerationCancelled("cancelled_during", phase="denoise")))
    for lang, said in (("en-US", "Stopped."), ("zh-CN", "已停止。")):
        request = FakeRequest(lang)
        fns["generate_page"](object(), "a cat", "", 256, 3, 8, 2, 9.0, 1, batch=1, request=request,
                             progress=lambda *a, **k: None)
        *_, stop_message, video = fns["after_generate"](request)
        assert stop_message == said and video is None
    done = handlers(FakeService(tmp_path, FakeResult(tmp_path / "video_x.mp4", {"seed": 1})))
    _, _, after = run_generate(done)
    assert after[-2:] == (gr.update(), gr.update())            # a finished job leaves both alone


def test_cli_estimate_on_a_cpu_says_the_weights_precision_that_runs(capsys):
    """`estimate` on a machine without a GPU printed "fp32 on cpu" next to weights_dtype=fp16."""
    from i2v.cli import main

    main(["estimate", "--resolution", "256", "--frames", "8"])       # the suite's simulated CPU device
    out = capsys.readouterr().out
    head, plan = out.splitlines()[:2]
    assert "fp32 on cpu" in head and "weights_dtype=fp32" in plan and "fp16" not in plan


def test_the_steps_help_and_the_recommended_presets_steps_tell_one_truth():
    """The help said fewer than 50 steps looks visibly worse while the fast preset runs 30."""
    from i2v.configs import load_presets

    steps = S_BY_NAME["num_inference_steps"]
    fewest = min(p.num_inference_steps for p in load_presets())
    for help_text in (steps.help, steps.help_zh):
        numbers = [int(n) for n in re.findall(r"\d+", help_text)]
        assert fewest in numbers and all(n <= fewest for n in numbers), help_text


def test_chinese_page_words_units_times_seed_and_the_model_line_said_once():
    """Issue 28: '约 3 min' reads 分钟 in Chinese, stored ISO times read as local minutes, one word for seed (种子),
    and the model line says "Model" once."""
    from datetime import datetime, timezone

    from i2v.core.settings import SETTINGS
    from i2v.ui.format import duration_text, history_label, history_markdown, local_time, status_markdown

    assert duration_text(180, "zh") == "3 分钟" and duration_text(180) == "3 min" and duration_text(42, "zh") == "42 秒"
    assert local_time("2026-12-02T14:05:33") == "2026-12-02 14:05"
    aware = datetime(2026, 12, 2, 14, 5, tzinfo=timezone.utc)
    assert local_time(aware.isoformat()) == aware.astimezone().strftime("%Y-%m-%d %H:%M")
    assert local_time("video_20261202") == "video_20261202"          # not a time: shown as it is
    entry = {"video_path": "/out/video_1.mp4", "created": "2026-12-02T14:05:33", "seed": 7,
             "parameters": {"prompt": "a boat", "seed": 7}}
    for shown in (history_label(entry, "zh"), history_markdown(entry, "zh")):
        assert "2026-12-02 14:05" in shown and "T14:05:33" not in shown
    assert history_label(entry).startswith("2026-12-02 14:05:33 · ")     # the list tells one minute's videos apart
    assert next(s for s in SETTINGS if s.name == "seed").label_zh == "种子"
    state = {"status": "ready", "spec": "i2vgen-xl", "report": {"model": "i2vgen-xl", "device": "cpu"}}
    for lang, word in (("en", "Model"), ("zh", "模型")):
        assert status_markdown(state, lang).count(word) == 1


@pytest.mark.parametrize("lang,word", [("en", "Details"), ("zh", "详情")])
def test_the_raw_info_json_is_folded_under_a_closed_details_accordion(tmp_path, lang, word):
    """Issue 28: the raw JSON is for the curious, not the first thing a reader sees."""
    from i2v.i18n import text

    demo = ui.build_ui(FakeService(tmp_path, None))
    details = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "i2v-details")
    assert isinstance(details, gr.Accordion) and details.open is False
    assert "i2v-info" in [getattr(c, "elem_id", None) for c in details.children]
    assert text(lang, "details") == word
