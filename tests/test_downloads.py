"""Downloads a person can watch, resume and trust, against a loopback Hub (tests/hub_server.py) reached through
HF_ENDPOINT, with HF_HOME in a temporary folder: the files the app loads only, progress in the CLI, a dropped
connection resumed without fetching again what was on disk, a corrupted file refused and fetched again, a short
disk refused before any weight byte, a killed download resumed by the next run, delete limited to one repo's
cache entry, HF_HUB_OFFLINE honoured, and a Hub model at start-up downloaded then loaded."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from i2v import download_state, downloads
from tests.conftest import ROOT
from tests.hub_server import HubServer, Repo

REPO = "someone/tiny-i2v"
WEIGHTS = "unet/diffusion_pytorch_model.fp16.safetensors"
MIB = 2**20


def synthetic_files(seed: int = 0) -> dict[str, bytes]:
    """A diffusers-shaped repo: two weight formats and two variants, a tokenizer, extras the app never loads."""
    rnd = hashlib.sha256(str(seed).encode()).digest()

    def blob(n: int, tag: bytes) -> bytes:
        return (rnd + tag) * (n // (len(rnd) + len(tag))) + tag

    index = {"_class_name": "I2VGenXLPipeline", "_diffusers_version": "0.42.1",
             "unet": ["diffusers", "I2VGenXLUNet"], "tokenizer": ["transformers", "CLIPTokenizer"]}
    return {
        "model_index.json": json.dumps(index).encode(),
        "README.md": b"# card",
        "i2vgen_xl.safetensors": blob(2 * MIB, b"single-file"),
        "unet/config.json": b'{"sample_size": 8}',
        WEIGHTS: blob(3 * MIB + 12345, b"fp16"),
        "unet/diffusion_pytorch_model.safetensors": blob(5 * MIB, b"fp32"),
        "unet/diffusion_pytorch_model.fp16.bin": blob(MIB, b"bin16"),
        "tokenizer/vocab.json": b'{"a": 0}',
        "tokenizer/merges.txt": b"#version: 0.2\n",
        "not_a_component/x.safetensors": blob(MIB, b"other"),
    }


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    server = HubServer({REPO: Repo(synthetic_files()), "someone/other": Repo(synthetic_files(1))}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()


def expected_files() -> set[str]:
    return {"model_index.json", "unet/config.json", WEIGHTS, "tokenizer/vocab.json", "tokenizer/merges.txt"}


def run_cli(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "download", *args], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_only_the_files_the_app_loads_are_chosen():
    names = list(synthetic_files())
    assert set(downloads.select_files(names, "fp16", {"unet", "tokenizer"})) == expected_files()
    plain = set(downloads.select_files(names, None, {"unet", "tokenizer"}))
    assert "unet/diffusion_pytorch_model.safetensors" in plain and WEIGHTS not in plain
    # a repo without the variant: its own weights (diffusers falls back the same way)
    only_plain = [n for n in names if ".fp16." not in n]
    assert "unet/diffusion_pytorch_model.safetensors" in downloads.select_files(only_plain, "fp16", {"unet"})
    sharded = ["unet/diffusion_pytorch_model.safetensors.index.fp16.json",
               "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors",
               "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/config.json"]
    assert set(downloads.select_files(sharded, "fp16", {"unet"})) == {sharded[0], sharded[1], sharded[3]}


def test_whole_download_in_the_cli_with_progress_and_only_the_loaded_files(hub):
    proc = run_cli(REPO, "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    snapshot = downloads.cache_root() / f"models--{REPO.replace('/', '--')}" / "snapshots"
    assert result["snapshot"].startswith(str(snapshot))
    files = synthetic_files()
    for name in expected_files():
        assert (snapshot.parent / "snapshots" / os.path.basename(result["snapshot"]) / name).read_bytes() == files[name]
    assert set(hub.served) == expected_files()                 # nothing else fetched: no fp32, no .bin, no extras
    assert hub.served[WEIGHTS] == len(files[WEIGHTS])
    total = sum(len(files[n]) for n in expected_files())
    assert f"[{'#' * 30}] {total / 1e6:.1f} MB of {total / 1e6:.1f} MB" in err    # the bar, full at the end
    for name in expected_files() - {"model_index.json"}:
        assert f"  {name}: " in err and " ready " in err           # one line per file
    assert download_state.state_of(REPO).state == download_state.READY


def test_dropped_connection_resumes_without_fetching_again_what_was_written(hub):
    hub.faults.drop_after[WEIGHTS] = 2 * MIB                  # whole chunks on disk when the server hangs up
    seen = []
    snapshot = downloads.download(REPO, variant="fp16", on_progress=lambda p: seen.append((p.done, p.total)))
    size = len(synthetic_files()[WEIGHTS])
    assert (snapshot / WEIGHTS).read_bytes() == synthetic_files()[WEIGHTS]
    assert hub.ranges == [(WEIGHTS, 2 * MIB)]                  # resumed at the bytes already written
    assert hub.served[WEIGHTS] == size                         # every byte sent once
    assert seen[-1][0] == seen[-1][1] and all(done <= total for done, total in seen)


def test_a_corrupted_file_is_refused_and_fetched_again(hub, caplog):
    hub.faults.corrupt_once.add(WEIGHTS)
    caplog.set_level("WARNING", logger="i2v.downloads")
    snapshot = downloads.download(REPO, variant="fp16")
    size = len(synthetic_files()[WEIGHTS])
    assert (snapshot / WEIGHTS).read_bytes() == synthetic_files()[WEIGHTS]
    assert hub.served[WEIGHTS] == 2 * size and WEIGHTS in caplog.text and "SHA-256" in caplog.text
    # damaged on disk later (same size: only the hash can tell): the next download names it and fetches it again
    blob = (snapshot / WEIGHTS).resolve()
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    caplog.clear()
    downloads.download(REPO, variant="fp16")
    assert (snapshot / WEIGHTS).read_bytes() == synthetic_files()[WEIGHTS]
    assert hub.served[WEIGHTS] == 3 * size and f"damaged file {WEIGHTS}" in caplog.text


def test_too_little_disk_is_refused_with_both_figures_before_any_weight_byte(hub):
    free = 3 * MIB
    with pytest.raises(downloads.DownloadError) as refused:
        downloads.download(REPO, variant="fp16", free=lambda folder: free)
    text = refused.value.text("en")
    needed = sum(len(synthetic_files()[n]) for n in expected_files())
    assert refused.value.key == "download_no_space"
    assert f"{needed / 1e9:.2f} GB still needed" in text and f"only {free / 1e9:.2f} GB free" in text
    assert set(hub.served) <= {"model_index.json"}            # the plan's index only: no weights
    assert not list(downloads.repo_entry(REPO).glob("blobs/*.incomplete"))
    assert "GB" in refused.value.text("zh")


def test_a_killed_download_resumes_on_the_next_run(hub):
    hub.faults.drop_after[WEIGHTS] = 2 * MIB
    hub.faults.hold_ranges.add(WEIGHTS)                       # the resume attempt hangs: the app is killed there
    proc = run_cli(REPO)
    try:
        assert hub.range_seen.wait(60), "the first run never tried to resume"
        partials = list(downloads.repo_entry(REPO).glob("blobs/*.incomplete"))
        assert [p.stat().st_size for p in partials] == [2 * MIB]
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    hub.faults.hold_ranges.clear()
    hub.release.set()
    hub.ranges.clear()
    second = run_cli(REPO)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert hub.ranges == [(WEIGHTS, 2 * MIB)] and "resuming" in err
    assert hub.served[WEIGHTS] == len(synthetic_files()[WEIGHTS])     # over both runs: each byte once
    assert download_state.state_of(REPO).state == download_state.READY


def test_delete_removes_only_that_repos_cache_entry(hub, tmp_path):
    downloads.download(REPO, variant="fp16")
    downloads.download("someone/other", variant="fp16")
    root = downloads.cache_root()
    keep = root / "models--someone--tiny-i2v-extra"
    keep.mkdir()
    (keep / "x").write_text("x")
    freed = download_state.delete(REPO)
    assert freed >= len(synthetic_files()[WEIGHTS])
    assert not downloads.repo_entry(REPO).exists()
    assert download_state.state_of(REPO).state == download_state.ABSENT
    assert download_state.state_of("someone/other").state == download_state.READY
    assert (keep / "x").read_text() == "x"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious").write_text("p")
    downloads.repo_entry(REPO).symlink_to(outside)            # an entry that leads out of the cache
    with pytest.raises(downloads.DownloadError, match="nothing was deleted"):
        download_state.delete(REPO)
    assert (outside / "precious").exists()


def test_hf_hub_offline_is_honoured(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(downloads.DownloadError) as refused:
        downloads.download(REPO, variant="fp16")
    assert refused.value.key == "download_offline" and "--model /path" in refused.value.text("en")
    assert hub.served == {}
    proc = run_cli(REPO)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "HF_HUB_OFFLINE" in err and hub.served == {}


@pytest.fixture(scope="module")
def tiny_repo_folder(tmp_path_factory):
    """The tiny I2VGen-XL written as the Hub holds it: its own weights and the fp16 variant side by side."""
    import torch
    from diffusers import I2VGenXLPipeline

    from i2v.tiny_model import build_tiny_components

    folder = tmp_path_factory.mktemp("tiny-hub-repo")
    pipe = I2VGenXLPipeline(**build_tiny_components())
    pipe.save_pretrained(folder)
    pipe.to(dtype=torch.float16).save_pretrained(folder, variant="fp16")
    return folder


def test_a_hub_model_at_start_up_is_downloaded_with_its_lines_in_the_log_then_loaded(tiny_repo_folder, monkeypatch,
                                                                                      tmp_path, caplog):
    from i2v import pipeline as pl
    from tests.hub_server import repo_from_folder

    server = HubServer({REPO: repo_from_folder(tiny_repo_folder)}).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        choice = pl.choose_model(REPO)
        assert choice.kind == "hub"
        caplog.set_level("INFO", logger="i2v.downloads")
        loaded = pl.load_pipeline(choice, device="cpu")
        assert (loaded.report.kind, loaded.report.repo) == ("local", REPO)
        assert loaded.choice.source.startswith(str(downloads.repo_entry(REPO) / "snapshots"))
        served = set(server.served)
        assert "unet/diffusion_pytorch_model.safetensors" in served       # the CPU plan reads the repo's own weights
        assert not [n for n in served if ".fp16." in n]                    # and never the fp16 variant
        for name in served - {"model_index.json"}:
            assert f"  {name}: " in caplog.text
        again = pl.choose_model(REPO)                                      # now found in the cache, no download
        assert (again.kind, again.repo, again.source) == ("local", REPO, loaded.choice.source)
    finally:
        server.stop()


def test_cancel_keeps_what_was_written_and_the_next_download_resumes(hub):
    import threading

    hub.faults.throttle[WEIGHTS] = 4 * MIB                    # slow enough to be cancelled half-way
    cancel, outcome = threading.Event(), {}

    def watch(progress):
        if progress.file == WEIGHTS and progress.done > MIB:
            cancel.set()

    def run():
        try:
            downloads.download(REPO, variant="fp16", on_progress=watch, cancel=cancel)
        except downloads.Cancelled as exc:
            outcome["cancelled"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    assert "cancelled" in outcome and "resumes" in outcome["cancelled"].text("en")
    kept = [p.stat().st_size for p in downloads.repo_entry(REPO).glob("blobs/*.incomplete")]
    assert len(kept) == 1 and 0 < kept[0] < len(synthetic_files()[WEIGHTS])
    from i2v.ui.models_panel import ModelsPanel

    old = downloads.repo_entry(REPO).glob("blobs/*.incomplete").__next__()
    os.utime(old)                                             # written to just now (by another process, say)
    partial = download_state.state_of(REPO)
    assert (partial.state, partial.done < partial.total, partial.active) == (download_state.PARTIAL, True, True)
    panel = ModelsPanel()
    assert panel.state_text(REPO, "en").startswith("downloading ")     # as a download in another process shows
    os.utime(old, (old.stat().st_atime - 60, old.stat().st_mtime - 60))      # written to a minute ago: paused
    assert not download_state.state_of(REPO).active
    assert panel.state_text(REPO, "en").startswith("paused: ")
    del hub.faults.throttle[WEIGHTS]
    hub.ranges.clear()
    downloads.download(REPO, variant="fp16")
    assert hub.ranges == [(WEIGHTS, kept[0])]
    assert download_state.state_of(REPO).state == download_state.READY


def test_the_token_reaches_the_hub_and_is_never_printed(hub, monkeypatch):
    secret = "hf_" + "x" * 30
    monkeypatch.setenv("HF_TOKEN", secret)
    proc = run_cli(REPO)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"Bearer {secret}" in hub.authorizations
    assert secret not in out + err


def test_dir_downloads_into_another_cache_and_names_the_folder_to_start_with(hub, tmp_path):
    proc = run_cli(REPO, "--dir", str(tmp_path / "elsewhere"), "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["snapshot"].startswith(str(tmp_path / "elsewhere" / "models--someone--tiny-i2v"))
    assert result["model_flag"] == f"--model {result['snapshot']}"
    assert (tmp_path / "elsewhere" / "models--someone--tiny-i2v" / "snapshots").is_dir()
    assert not downloads.repo_entry(REPO).exists()            # the default cache untouched
    refused = run_cli("tiny")
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 1 and "not a family alias or a repo id" in err
