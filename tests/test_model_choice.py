"""Choosing the model at run time: the service switches its real worker processes between the tiny models, the
page's rows follow the running family, Reuse keeps the family, and the launched app does it through its API."""
import json
import threading

import psutil
import pytest
from gradio_client import handle_file

from i2v import video
from i2v.core.request import RequestError
from i2v.models import by_name
from tests.conftest import RunningApp

WAN = "tiny-wan2.2-ti2v-5b"
WAN_ROWS = dict(prompt="a boat", negative_prompt="", resolution=256, fps=8, guidance_scale=5.0, seed=3,
                num_inference_steps=2)


# --- the service over a real worker process ----------------------------------------------------------------
@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from i2v.service import GenerationService
    from i2v.worker import WorkerPool, WorkerRunner

    tmp = tmp_path_factory.mktemp("choice")
    runner = WorkerPool([WorkerRunner("tiny", tmp / "logs", outputs_dir=tmp / "outputs")])
    made = GenerationService(runner, tmp / "outputs", tmp / "logs")
    yield made
    runner.shutdown()


def names(models, **where):
    return [m["name"] for m in models if all(m.get(k) == v for k, v in where.items())]


def test_a_bad_spec_is_refused_naming_the_field_and_nothing_changes(service):
    pid = service.runner.workers[0].pid
    for bad in ("no-such-model", "", None, 7):
        with pytest.raises(RequestError) as caught:
            service.switch_model(bad)
        assert caught.value.key == "model_unknown" and caught.value.params["field"] == "model"
        assert caught.value.text("en").startswith("Model:") and caught.value.text("zh").startswith("模型：")
    with pytest.raises(RequestError) as caught:          # owner/name that is not cached, Hub unreachable here
        service.switch_model("nobody/not-a-model")
    assert caught.value.key == "model_unavailable" and "nobody/not-a-model" in str(caught.value)
    assert service.runner.workers[0].pid == pid and service.model_state()["spec"] == "tiny"


def test_switching_is_refused_while_a_job_runs(service, sample_image):
    from i2v.core.errors import BusyError

    denoising, outcome = threading.Event(), {}

    def progress(update):
        if update.phase == "denoise" and update.index >= 1:
            denoising.set()

    def job():
        try:
            service.generate(str(sample_image), dict(prompt="slow", resolution=256, num_frames=3, fps=8,
                                                     num_inference_steps=150, seed=1), progress=progress)
        except Exception as exc:  # noqa: BLE001 - the outcome is asserted below
            outcome["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    try:
        assert denoising.wait(120), "the job never reached denoising"
        with pytest.raises(BusyError) as caught:
            service.switch_model(WAN)
        assert caught.value.key == "model_busy" and caught.value.params["field"] == "model"
        assert service.model_state()["spec"] == "tiny" and service.advisor.family().name == "i2vgen-xl"
    finally:
        service.cancel_all()
        thread.join(60)
    assert type(outcome.get("error")).__name__ == "GenerationCancelled"


def test_switch_tiny_to_tiny_wan_and_back_restarts_the_worker_with_each_spec(service):
    worker = service.runner.workers[0]
    service.runner.workers[0].load()
    assert service.model_state()["report"]["family"] == "i2vgen-xl"
    old_pid = worker.pid
    assert names(service.models(), current=True) == ["tiny"] and WAN in names(service.models(), kind="tiny")

    done = service.switch_model(WAN)
    assert done["family"] == "wan2.2-ti2v-5b" and done["kind"] == "tiny" and done["released_gib"] > 0
    assert not psutil.pid_exists(old_pid) and worker.pid != old_pid           # the old process is gone
    assert worker.model_spec == WAN and done["state"]["status"] == "not loaded"
    rules = service.advisor.family().rules                  # the advisor's cached source followed the switch
    assert rules.frames_step == 4 and rules.setting("resolution").choices == (256, 480, 704)
    assert names(service.models(), current=True) == [WAN]
    assert service.presets_status()["presets"][0]["values"]["num_frames"] % 4 == 1   # Wan's presets now
    worker.load()                                            # the new worker loads the new spec
    assert service.model_state()["report"]["family"] == "wan2.2-ti2v-5b"

    wan_pid = worker.pid
    back = service.switch_model("tiny")
    assert back["family"] == "i2vgen-xl" and not psutil.pid_exists(wan_pid)
    assert service.advisor.family().name == "i2vgen-xl" and names(service.models(), current=True) == ["tiny"]


# --- the page's handlers (no browser) ----------------------------------------------------------------------
class Request:
    session_hash = "s1"
    headers = {"accept-language": "en-US"}


class FamilyService:
    """A stand-in service running `family`, with one history entry made by `made_by`."""

    def __init__(self, family, made_by, tiny=True):
        self.advisor = type("A", (), {"family": staticmethod(lambda: by_name(family))})()
        self.entry = {"video_path": "/out/video_1.mp4", "seed": 5, "family": made_by, "model": "tiny-x",
                      "load_report": {"kind": "tiny" if tiny else "local"},
                      "parameters": {"prompt": "p", "resolution": 256, "num_frames": 9, "fps": 8,
                                     "num_inference_steps": 2, "guidance_scale": 5.0}}
        self.switched = []

    def history(self):
        return [self.entry]

    def models(self):
        from i2v import model_choice

        return model_choice.choices("tiny", cached=lambda repo: False)

    def switch_model(self, spec):
        self.switched.append(spec)
        return {}

    def model_state(self):
        return {"status": "not loaded", "spec": "tiny"}


def test_the_page_rows_follow_the_running_family():
    from i2v.core.settings import SETTINGS
    from i2v.ui.handlers import Handlers

    out = Handlers(FamilyService("wan2.2-ti2v-5b", "wan2.2-ti2v-5b")).on_family(Request())
    rows = dict(zip((s.name for s in SETTINGS), out[1:]))
    assert (rows["num_frames"]["minimum"], rows["num_frames"]["maximum"], rows["num_frames"]["step"],
            rows["num_frames"]["value"]) == (5, 121, 4, 121)
    assert [c[1] for c in rows["resolution"]["choices"]] == [256, 480, 704] and rows["resolution"]["value"] == 704
    assert "value" not in rows["prompt"] and "value" not in rows["seed"]          # what the user typed stays
    assert out[0]["value"] == "tiny" and WAN in [c[1] for c in out[0]["choices"]]
    i2vgen = dict(zip((s.name for s in SETTINGS), Handlers(FamilyService("i2vgen-xl", None)).on_family(Request())[1:]))
    assert (i2vgen["num_frames"]["maximum"], i2vgen["num_frames"]["step"]) == (64, 1)


def test_reuse_of_another_familys_entry_applies_nothing_and_names_the_model_to_choose():
    from i2v.ui.format import history_label
    from i2v.ui.handlers import Handlers

    service = FamilyService("i2vgen-xl", "wan2.2-ti2v-5b")
    out = Handlers(service).reuse("/out/video_1.mp4", Request())
    assert all(update == {"__type__": "update"} for update in out[:-2])         # no value applied
    assert "Wan 2.2 TI2V-5B" in out[-2] and f"`{WAN}`" in out[-2] and "I2VGen-XL" in out[-2]
    assert "Wan 2.2 TI2V-5B" in history_label(service.entry) and service.switched == []
    same = Handlers(FamilyService("wan2.2-ti2v-5b", "wan2.2-ti2v-5b")).reuse("/out/video_1.mp4", Request())
    assert same[4]["value"] == 9 and same[3]["value"] == 256                    # Wan's rows: 9 frames applies


def test_a_switch_is_refused_while_a_job_waits_in_the_queue():
    from i2v.ui.handlers import Handlers

    service = FamilyService("i2vgen-xl", None)
    handlers = Handlers(service)
    handlers.waiting_jobs = lambda: 1
    with pytest.raises(Exception) as caught:
        handlers.switch_model(WAN, Request())
    assert "Model:" in str(caught.value) and service.switched == []
    status, _ = handlers.switch_model_page(WAN, Request())       # the page: the reason in the status area
    assert "Model:" in status and "not switched" in status and service.switched == []


def test_cli_models_lists_every_tiny_variant(capsys):
    from i2v import cli

    assert cli.main(["models", "--json", "--model", WAN]) == 0
    listed = json.loads(capsys.readouterr().out)
    from i2v.models import tiny_choices

    assert {m["name"] for m in listed if m["kind"] == "tiny"} == set(tiny_choices()) >= {"tiny", WAN}
    assert [m["name"] for m in listed if m["current"]] == [WAN]
    assert WAN in cli.model_help() and "wan2.2" in cli.model_help()


# --- the launched app, through gradio_client ---------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    running = RunningApp(tmp_path_factory.mktemp("choice_app"))
    yield running
    running.stop()


def test_switch_model_then_generate_with_wan_rows_through_the_api(app, sample_image):
    client = app.client()
    listed = client.predict(api_name="/models")
    assert WAN in names(listed, kind="tiny") and names(listed, current=True) == ["tiny"]
    with pytest.raises(Exception, match="Model:"):
        client.predict("no-such-model", api_name="/switch_model")
    status = client.predict(WAN, api_name="/switch_model")
    assert status["family"] == "wan2.2-ti2v-5b" and status["model"] == WAN and status["status"] == "not loaded"
    assert names(client.predict(api_name="/models"), current=True) == [WAN]

    path, info = client.predict(image=handle_file(str(sample_image)), num_frames=9, api_name="/generate",
                                **WAN_ROWS)
    probed = video.probe_video(path)
    assert probed.frames == 9 and probed.fps == 8 and min(probed.width, probed.height) == 256
    written = json.loads(video.sidecar_path(app.outputs / info["video"]).read_text(encoding="utf-8"))
    assert written["family"] == info["family"] == "wan2.2-ti2v-5b"
    with pytest.raises(Exception) as caught:              # 8 breaks Wan's 4k+1 rule: refused, the field named
        client.predict(image=handle_file(str(sample_image)), num_frames=8, api_name="/generate", **WAN_ROWS)
    assert "Frames" in str(caught.value) and "4k+1" in str(caught.value)


def test_the_ray_backend_switches_by_replacing_its_actors():
    ray = pytest.importorskip("ray")
    from i2v.ray_backend import RayRunner
    from i2v.core.errors import BusyError

    runner = RayRunner("tiny", worker_envs=[{}], num_cpus=0.5,
                       ray_init={"num_cpus": 2, "object_store_memory": 200 * 2**20})
    try:
        old = runner.workers[0].actor
        assert runner.switch_model(WAN) == 0 and runner.model_spec == WAN
        assert runner.workers[0].actor is not old and runner.describe()[0]["spec"] == WAN   # a new actor, new spec
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(old.state.remote(), timeout=30)                                          # the old one is gone
        runner.workers[0].busy = True
        with pytest.raises(BusyError):
            runner.switch_model("tiny")
        assert runner.model_spec == WAN
    finally:
        runner.workers[0].busy = False
        runner.shutdown()
