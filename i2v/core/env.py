"""The one table of environment variables the app reads: name, default, meaning.

Every `I2V_*` read goes through `value()` (the locale, read by `i2v.core.words.default_lang`, is listed too); the README's "Environment variables" section is generated from
this table (a test keeps them equal). Defaults are strings, as the environment holds them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from i2v.core.settings import AUTO_FALLBACK, MAX_ATTEMPTS
from i2v.core.words import LANG_ENV, LOCALE_ENV


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    meaning: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("I2V_MODEL", "auto", "model to load: auto, tiny, a Hugging Face repo id, or a local diffusers folder "
                                "(`--model`)"),
    EnvVar("I2V_HOST", "127.0.0.1", "address the web UI binds to (`--host`)"),
    EnvVar("I2V_PORT", "7860", "port of the web UI (`--port`)"),
    EnvVar("I2V_GPUS", "", "GPUs to run workers on: `0,1` or `all` (`--gpus`; empty = the first GPU)"),
    EnvVar("I2V_BACKEND", "local", "where jobs run: `local` (worker processes on this machine) or `ray` (GPU workers "
                                   "on a Ray cluster; `--backend`)"),
    EnvVar("I2V_RAY_ADDRESS", "", "the Ray cluster to join with `--backend ray` (`--ray-address`; e.g. `auto` or "
                                  "`10.0.0.5:6379`; empty = start a local Ray)"),
    EnvVar("I2V_RAY_WORKERS", "", "Ray workers to start (empty = one per GPU in the cluster, one on a CPU-only "
                                  "cluster)"),
    EnvVar("I2V_VRAM_LIMIT_GIB", "", "share a card: the most GPU memory the app may use, in GiB (`--vram-limit`); "
                                     "enforced in the worker, so going past it is an out-of-memory error the "
                                     "guard handles"),
    EnvVar("I2V_AUTH", "", "`USER:PASSWORD` login for the web UI and API (`--auth`); required to serve beyond "
                           "127.0.0.1"),
    EnvVar("I2V_AUTH_FILE", "", "a file holding one `USER:PASSWORD` line, readable by its owner only "
                                "(`--auth-file`): the login without a password on any command line"),
    EnvVar("I2V_MAX_UPLOAD_MIB", "50", "largest upload the web server accepts, and the largest input image file "
                                       "(`--max-upload-mib`)"),
    EnvVar("I2V_OUTPUTS", "outputs", "folder for videos and their sidecars"),
    EnvVar("I2V_LOGS", "logs", "folder for logs, the PID file and logs/oom.jsonl"),
    EnvVar("I2V_TIME_BUDGET_MINUTES", "0", "cap the steps so a job's predicted time fits this many minutes "
                                           "(0 = no cap)"),
    EnvVar("I2V_AUTO_FALLBACK", "1" if AUTO_FALLBACK else "0", "after an out-of-memory error, retry automatically with a smaller plan"),
    EnvVar("I2V_MAX_ATTEMPTS", str(MAX_ATTEMPTS), "attempts per job under the OOM guard, the first included"),
    EnvVar("I2V_IDLE_UNLOAD_MINUTES", "0", "unload the model after this many idle minutes (0 = never)"),
    EnvVar("I2V_WATCHDOG_FLOOR_S", "120", "a worker silent this long (at least) is hung and is replaced"),
    EnvVar("I2V_WATCHDOG_STEP_FACTOR", "5", "... or this many times its slowest step, whichever is longer"),
    EnvVar("I2V_LOAD_TIMEOUT_S", "600", "a model load with no progress for this long is replaced"),
    EnvVar("I2V_CANCEL_GRACE_S", "10", "a worker that does not stop this long after Stop is killed and replaced"),
    EnvVar("I2V_START_TIMEOUT", "180", "start_app.sh: seconds to wait for the page to answer"),
    EnvVar("I2V_STOP_TIMEOUT", "15", "restart.sh / stop: seconds between SIGTERM and SIGKILL"),
    EnvVar("I2V_VENV", ".venv", "the virtual environment the scripts create and use"),
    EnvVar("I2V_PYTHON", "", "set by the scripts: the venv's python"),
    EnvVar(LANG_ENV, "", "the CLI's language when `--lang` is not given: a Chinese locale (`zh_CN.UTF-8`) speaks "
                         f"中文, any other English; {' and '.join(f'`{n}`' for n in LOCALE_ENV[:-1])} come first when "
                         "set, as the C library reads them"),
    EnvVar("I2V_INJECT_OOM", "", "testing aid: `<phase>[:<n>]` or `always` raises a real out-of-memory error"),
    EnvVar("I2V_INJECT_HANG", "", "testing aid: hang the worker at that phase"),
    EnvVar("I2V_INJECT_CRASH", "", "testing aid: kill the worker at that phase"),
    EnvVar("I2V_INJECT_IGNORE_CANCEL", "", "testing aid: 1 makes the worker ignore Stop"),
    EnvVar("I2V_SIMULATED_DEVICE", "", "testing aid: `KIND,TOTAL_GIB,FREE_GIB[,HOST_GIB]` fixed device figures "
                                       "instead of this machine's (the test suite sets `cpu,32,24,32`)"),
)
ENV_BY_NAME = {var.name: var for var in ENV_VARS}


def value(name: str, environ: Mapping[str, str]) -> str:
    """The variable's value in environ, else its default (an unknown name is a programming error)."""
    return environ.get(name, ENV_BY_NAME[name].default)


def markdown_table() -> str:
    """The README's environment variable table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {f'`{v.default}`' if v.default else '—'} | {v.meaning} |" for v in ENV_VARS]
    return "\n".join(rows)
