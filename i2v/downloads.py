"""A model's weights from the Hugging Face Hub, watched, resumable and verified, through huggingface_hub itself.

Why not `hf_hub_download` alone: it keeps no partial file across processes (a killed download restarts from
zero) and says nothing about free disk or the variant. So: the Hub's file list (HfApi.model_info with
files_metadata: sizes, LFS SHA-256) narrowed to the files the app loads (the family's variant only); the bytes
still needed checked against free disk before any byte; each missing blob fetched by huggingface_hub's http_get
(its Range resume and retries, HF_ENDPOINT, HF_TOKEN headers) into `blobs/<etag>.incomplete` of the repo's cache
entry, kept when cut; its size and SHA-256 checked; then renamed to its blob and linked into the snapshot by
hf_hub_download (the cache layout stays huggingface_hub's). The token is never logged.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from i2v.download_progress import Cancelled, DownloadError, Progress, _Meter, _tqdm_class, log_progress  # noqa: F401 - log_progress re-exported

log = logging.getLogger(__name__)

PLAN_FILE = "i2v-plan.json"         # the plan of the last download, kept in the repo's cache entry
PARTIAL_SUFFIX = ".incomplete"
DISK_MARGIN_BYTES = 256 * 2**20     # left free after a download (logs, outputs, the OS)
WEIGHT_EXTS = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".h5", ".gguf")
VARIANTS = ("fp16", "bf16", "fp32", "fp8", "non_ema", "ema")
SKIP_EXTS = (".md", ".png", ".jpg", ".jpeg", ".gif", ".mp4", ".webp")
READ_CHUNK = 8 * 2**20
CHUNK_BYTES = 2**20     # http_get's read size: bytes reach the disk (and the meter) every MiB, not every 10 MB




# ----------------------------------------------------------------------------------------------------------
# Where: the endpoint, the cache and a repo's entry in it (read at call time, so tests and restarts can move them)
# ----------------------------------------------------------------------------------------------------------
def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cache_root() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def repo_entry(repo_id: str, cache_dir: Path | None = None) -> Path:
    """The repo's folder in the cache (models--owner--name): everything a download writes lives under it."""
    from huggingface_hub.file_download import repo_folder_name

    return Path(cache_dir or cache_root()) / repo_folder_name(repo_id=repo_id, repo_type="model")


# ----------------------------------------------------------------------------------------------------------
# The plan: which files, how big, which hash
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedFile:
    path: str
    size: int
    etag: str                 # the blob's name in the cache: the LFS SHA-256, else the git blob id
    sha256: str | None        # LFS files only (the large ones)


@dataclass(frozen=True)
class Plan:
    repo_id: str
    revision: str
    commit: str
    variant: str | None
    files: tuple[PlannedFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "files": [asdict(f) for f in self.files]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        return cls(data["repo_id"], data["revision"], data["commit"], data["variant"],
                   tuple(PlannedFile(**f) for f in data["files"]))


def _variant_of(name: str) -> str | None:
    parts = name.split(".")
    for part in parts[1:-1]:
        head = part.split("-")[0]
        if head in VARIANTS:
            return head
    return None


def select_files(names: list[str], variant: str | None, components: set[str] | None = None) -> list[str]:
    """The files diffusers' from_pretrained reads for this variant: model_index.json, and in each component
    folder its configs and tokenizer files plus the weights of the variant (the repo's own weights where a
    folder has none of that variant); safetensors over other weight formats. Top-level extras are left out."""
    keep = [n for n in names if n == "model_index.json"]
    folders: dict[str, list[str]] = {}
    for name in names:
        if "/" in name and not name.endswith(SKIP_EXTS):
            folder = name.split("/", 1)[0]
            if components is None or folder in components:
                folders.setdefault(folder, []).append(name)
    for folder, files in sorted(folders.items()):
        weights = [n for n in files if n.endswith(WEIGHT_EXTS) or ".safetensors.index" in n or ".bin.index" in n]
        keep += [n for n in files if n not in weights]
        wanted = [n for n in weights if variant and _variant_of(n.rsplit("/", 1)[-1]) == variant]
        if not wanted:
            wanted = [n for n in weights if _variant_of(n.rsplit("/", 1)[-1]) is None]
        if any(".safetensors" in n for n in wanted):
            wanted = [n for n in wanted if ".safetensors" in n]
        keep += wanted
    return sorted(keep)


def plan(repo_id: str, revision: str = "main", variant: str | None = None) -> Plan:
    """Ask the Hub (one call) for the repo's files with sizes and LFS SHA-256, narrowed to what the app loads."""
    from huggingface_hub import HfApi, hf_hub_download

    if offline():
        raise DownloadError("download_offline", repo=repo_id)
    api = HfApi(endpoint=endpoint())
    info = api.model_info(repo_id, revision=revision, files_metadata=True)
    siblings = {s.rfilename: s for s in info.siblings or []}
    components = None
    if "model_index.json" in siblings:
        index = json.loads(Path(hf_hub_download(repo_id, "model_index.json", revision=info.sha,
                                                cache_dir=cache_root(), endpoint=endpoint())).read_text())
        components = {k for k, v in index.items() if not k.startswith("_") and isinstance(v, list)}
    files = []
    for name in select_files(list(siblings), variant, components):
        s = siblings[name]
        sha = s.lfs.sha256 if s.lfs else None
        files.append(PlannedFile(name, int(s.lfs.size if s.lfs else s.size or 0), sha or s.blob_id, sha))
    return Plan(repo_id, revision, info.sha, variant, tuple(files))


def variant_for(family) -> str | None:
    """The weights variant the app loads on CUDA (where real weights run); None: the repo's own."""
    return getattr(family, "cuda_variant", None)


# ----------------------------------------------------------------------------------------------------------
# On disk: what is there, what is damaged, how much is still needed
# ----------------------------------------------------------------------------------------------------------
def blob_path(entry: Path, f: PlannedFile) -> Path:
    return entry / "blobs" / f.etag


def partial_path(entry: Path, f: PlannedFile) -> Path:
    return entry / "blobs" / (f.etag + PARTIAL_SUFFIX)


def bytes_on_disk(entry: Path, f: PlannedFile) -> int:
    """The file's bytes already written: the whole blob, else the kept partial."""
    for path in (blob_path(entry, f), partial_path(entry, f)):
        if path.is_file():
            return min(path.stat().st_size, f.size)
    return 0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def damage(path: Path, f: PlannedFile) -> str | None:
    """Why the file at path is not the Hub's file (None: it is): its size, then its SHA-256 for LFS files."""
    size = path.stat().st_size
    if size != f.size:
        return f"{size} bytes instead of {f.size}"
    if f.sha256 and sha256_of(path) != f.sha256:
        return "its SHA-256 differs from the Hub's"
    return None


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk holding folder (its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_space(the_plan: Plan, entry: Path, free: Callable[[Path], int] = free_bytes) -> int:
    """The bytes still needed; refused with both figures when the disk cannot take them (before any byte)."""
    needed = sum(f.size - bytes_on_disk(entry, f) for f in the_plan.files)
    available = free(entry)
    if needed + DISK_MARGIN_BYTES > available:
        raise DownloadError("download_no_space", repo=the_plan.repo_id, needed_gb=f"{needed / 1e9:.2f}",
                            free_gb=f"{available / 1e9:.2f}", folder=str(entry.parent))
    return needed


# ----------------------------------------------------------------------------------------------------------
# Fetching
# ----------------------------------------------------------------------------------------------------------
def _fetch_blob(the_plan: Plan, f: PlannedFile, entry: Path, meter: _Meter) -> None:
    """One blob through huggingface_hub's http_get into the kept partial (resumed from its size), checked, renamed."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    # httpx hands a chunk over only when whole: what a dropped connection had buffered is fetched again; smaller
    # chunks keep that loss (and the progress steps) at a MiB
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)
    partial = partial_path(entry, f)
    partial.parent.mkdir(parents=True, exist_ok=True)
    if partial.is_file() and partial.stat().st_size > f.size:
        partial.unlink()
    url = hf_hub_url(the_plan.repo_id, f.path, revision=the_plan.commit, endpoint=endpoint())
    headers = build_hf_headers()              # HF_TOKEN / the saved login; never logged
    location = get_hf_file_metadata(url, headers=headers, endpoint=endpoint()).location
    with partial.open("ab") as stream:
        resume = stream.tell()
        if resume:
            log.info("resuming %s at %d of %d bytes", f.path, resume, f.size)
        http_get(location, stream, resume_size=resume, headers=headers, expected_size=f.size,
                 displayed_filename=f.path, tqdm_class=_tqdm_class(meter))
    why = damage(partial, f)
    if why:
        partial.unlink()
        raise DownloadError("download_damaged", file=f.path, why=why)
    os.replace(partial, blob_path(entry, f))


def _link(the_plan: Plan, f: PlannedFile) -> Path:
    """The snapshot's link to an existing blob, made by huggingface_hub (its layout, its refs)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(the_plan.repo_id, f.path, revision=the_plan.commit, cache_dir=cache_root(),
                                endpoint=endpoint()))


def _ensure_file(the_plan: Plan, f: PlannedFile, entry: Path, meter: _Meter) -> None:
    """Under huggingface_hub's own lock for this blob: two downloads of one repo (the page's and the worker's)
    never write one partial at once; the second finds the blob whole."""
    from huggingface_hub.utils import WeakFileLock

    lock = entry.parent / ".locks" / entry.name / f"{f.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        _ensure_file_locked(the_plan, f, entry, meter)


def _ensure_file_locked(the_plan: Plan, f: PlannedFile, entry: Path, meter: _Meter, attempts: int = 2) -> None:
    blob = blob_path(entry, f)
    if blob.is_file():
        why = damage(blob, f)
        if why is None:
            return
        log.warning("damaged file %s (%s): fetching it again", f.path, why)
        meter.add(-min(blob.stat().st_size, f.size))
        _unlink_file(the_plan, f, entry)
    for attempt in range(1, attempts + 1):
        try:
            _fetch_blob(the_plan, f, entry, meter)
            return
        except DownloadError as exc:
            if exc.key != "download_damaged" or attempt == attempts:
                raise
            log.warning("%s: fetching it again", exc.text("en"))
            meter.add(-(f.size))


def _unlink_file(the_plan: Plan, f: PlannedFile, entry: Path) -> None:
    for path in (blob_path(entry, f), entry / "snapshots" / the_plan.commit / f.path):
        if path.is_symlink() or path.exists():
            path.unlink()


def download(repo_id: str, revision: str = "main", family=None, variant: str | None = None,  # noqa: PLR0913
             on_progress: Callable[[Progress], None] | None = None, cancel: threading.Event | None = None,
             free: Callable[[Path], int] = free_bytes, on_plan: Callable[[Plan, int], None] | None = None) -> Path:
    """Download what the app loads of repo_id into the Hugging Face cache and return the snapshot folder.

    Resumes whatever is there (whole blobs, kept partials), refuses before any byte when the disk is short,
    checks every file (size, SHA-256 of the large ones) and fetches a damaged one again. Progress goes to
    on_progress (throttled) and one log line per file."""
    if family is not None and variant is None:
        variant = variant_for(family)
    the_plan = plan(repo_id, revision, variant)
    entry = repo_entry(repo_id)
    needed = check_space(the_plan, entry, free)
    entry.mkdir(parents=True, exist_ok=True)
    (entry / PLAN_FILE).write_text(the_plan.as_json(), encoding="utf-8")
    if on_plan is not None:
        on_plan(the_plan, needed)
    log.info("download %s@%s: %d files, %.2f GB in all, %.2f GB still needed", repo_id, the_plan.commit[:8],
             len(the_plan.files), the_plan.total_bytes / 1e9, needed / 1e9)
    progress = Progress(repo_id, the_plan.total_bytes, the_plan.total_bytes - needed)
    meter = _Meter(progress, on_progress, cancel)
    try:
        for f in the_plan.files:
            progress.file = f.path
            started = time.monotonic()
            _ensure_file(the_plan, f, entry, meter)
            _link(the_plan, f)
            log.info("  %s: %.1f MB ready (%.1f s)", f.path, f.size / 1e6, time.monotonic() - started)
    except Cancelled:
        progress.state = "cancelled"
        if on_progress is not None:
            on_progress(progress)
        raise
    progress.state, progress.file = "ready", ""
    if on_progress is not None:
        on_progress(progress)
    return entry / "snapshots" / the_plan.commit
