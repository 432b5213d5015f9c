"""Command line: `serve` (the default) and `generate`, plus the memory commands from i2v.cli_memory.

Logging configuration, the PID file and signal handling live here, never at import time elsewhere.
"""
from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from pathlib import Path

from i2v import cli_doctor, cli_download, cli_memory, cli_service, credentials, paths
from i2v.cli_memory import add_plan_arguments
from i2v.core import env
from i2v.core.errors import I2VError
from i2v.core.settings import SETTINGS

log = logging.getLogger("i2v")

LOG_FILE_NAME = "i2v.log"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
SHUTDOWN_GRACE_S = 5.0     # SIGTERM: how long the running job has to stop before its worker is told to exit
IDLE_CHECK_S = 30.0        # how often serve checks I2V_IDLE_UNLOAD_MINUTES
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_CANCELLED = 2, 1, 130
EXIT_PORT_BUSY = 3
STOP_POLL_S = 0.1           # how often the main thread looks for a stop request


def setup_logging(verbose: bool = False) -> Path:
    """Rotating app log in logs/ (everything, libraries' warnings included) plus our own warnings on stderr."""
    logs = paths.logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(logs / LOG_FILE_NAME, maxBytes=LOG_MAX_BYTES,
                                                        backupCount=LOG_BACKUPS, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("[i2v] %(levelname)s: %(message)s"))
    # libraries' warnings (I2VGenXLPipeline deprecated, CLIPImageProcessor/torchvision…) go to the log file only:
    # Python warnings become log records (py.warnings), and the terminal shows our own records and errors
    logging.captureWarnings(True)
    console.addFilter(lambda record: record.levelno >= logging.ERROR
                      or record.name.split(".")[0] in ("i2v", "__main__", "root"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (file_handler, console):
        root.addHandler(handler)
    return logs / LOG_FILE_NAME


def model_help() -> str:
    """--model's help, from the family registry: each family's names and its tiny variant."""
    from i2v.models import DEFAULT_FAMILY, FAMILIES

    families = "; ".join(f"{f.title}: {', '.join(dict.fromkeys((f.name, *f.aliases)))} (tiny variant: {f.tiny_alias})"
                         for f in FAMILIES)
    return (f"auto (the real {DEFAULT_FAMILY.title} if available, else its tiny test model), a family's name or "
            f"alias, a tiny variant, a Hugging Face repo id (default {DEFAULT_FAMILY.repo_id}) or a local diffusers "
            f"folder. {families}. `main.py models` lists what runs here [env I2V_MODEL]")


def _add_model_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=env.value("I2V_MODEL", os.environ), help=model_help())


def _add_gpus_flag(parser: argparse.ArgumentParser) -> None:
    _add_env_argument(parser, "--gpus", "I2V_GPUS", "GPUs to use, one worker each: 'all' or e.g. '0,1' (default: one "
                      "worker on the default device)")
    _add_env_argument(parser, "--backend", "I2V_BACKEND", "where jobs run: worker processes on this machine, or GPU "
                      "workers on a Ray cluster (pip install -e .[ray])", choices=("local", "ray"))
    _add_env_argument(parser, "--ray-address", "I2V_RAY_ADDRESS", "with --backend ray: the cluster to join (e.g. auto, "
                      "10.0.0.5:6379; default: start a local Ray)", metavar="ADDR")
    parser.add_argument("--vram-limit", type=_positive_gib, default=None, metavar="GIB",
                        help="share the card: use at most this much GPU memory; plans are chosen for it and "
                             "the worker enforces it [env I2V_VRAM_LIMIT_GIB]")



def _add_env_argument(parser: argparse.ArgumentParser, flag: str, var: str, help_text: str, **kwargs) -> None:
    """A flag whose default is environment variable `var` (or its default in the env table; unset and empty:
    None), converted by the flag's own type; its help names the variable."""
    parser.add_argument(flag, default=env.value(var, os.environ) or None, help=f"{help_text} [env {var}]",
                        **kwargs)

def _positive_gib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of GiB, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of GiB, got {text!r}")
    return value


def _add_generation_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per row of the settings table (dashes or underscores), so CLI and UI can't drift apart."""
    aliases = {"num_frames": ["--frames"], "num_inference_steps": ["--steps"], "guidance_scale": ["--guidance"]}
    for setting in SETTINGS:
        flags = [f"--{setting.name.replace('_', '-')}"]
        if "_" in setting.name:
            flags.append(f"--{setting.name}")
        flags += aliases.get(setting.name, [])
        # values arrive as text and are checked by the settings table, which names the field in its messages
        allowed = f" One of: {', '.join(map(str, setting.choices))}." if setting.choices else (
            f" Range {setting.minimum:g} to {setting.maximum:.10g}." if setting.minimum is not None else "")
        default = "" if setting.name == "prompt" else f" (default: {setting.default!r})"
        parser.add_argument(*flags, dest=setting.name, default=None, metavar=setting.name.upper(),
                            required=setting.name == "prompt", help=f"{setting.help}{allowed}{default}")


def _add_lang_flag(parser: argparse.ArgumentParser) -> None:
    from i2v.core.words import LANGS, default_lang

    parser.add_argument("--lang", choices=LANGS, default=default_lang(),
                        help="language of messages, progress and errors (default from LANG: zh_CN.UTF-8 -> zh)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="i2v: local image-to-video WebUI on I2VGen-XL")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the web UI (the default command)")
    _add_env_argument(serve, "--host", "I2V_HOST", "bind address")
    _add_env_argument(serve, "--port", "I2V_PORT", "port", type=int)
    serve.add_argument("--pid-file", type=Path, default=None, help="write this process's PID here; removed at exit")
    _add_env_argument(serve, "--auth", "I2V_AUTH", "require this login; needed to serve beyond 127.0.0.1 (visible to "
                      "local users through ps: prefer --auth-file)", metavar="USER:PASSWORD")
    _add_env_argument(serve, "--auth-file", "I2V_AUTH_FILE", "read the login from this file: one USER:PASSWORD line, "
                      "readable by you only (chmod 600)", metavar="PATH")
    serve.add_argument("--max-upload-mib", type=_positive_gib, default=None, metavar="MIB",
                       help="largest upload accepted (default 50) [env I2V_MAX_UPLOAD_MIB]")
    serve.add_argument("--verbose", action="store_true")
    _add_gpus_flag(serve)
    _add_model_flag(serve)
    serve.set_defaults(func=cmd_serve)

    gen = sub.add_parser("generate", help="generate one video headless")
    gen.add_argument("--image", required=True, type=Path, help="input image file")
    _add_generation_flags(gen)
    gen.add_argument("--out", type=Path, default=None, help="output MP4 path (default: outputs/video_<time>.mp4)")
    gen.add_argument("--json", action="store_true", help="print the result as JSON")
    add_plan_arguments(gen)
    gen.add_argument("--verbose", action="store_true")
    _add_lang_flag(gen)
    _add_gpus_flag(gen)
    _add_model_flag(gen)
    gen.set_defaults(func=cmd_generate)

    models = sub.add_parser("models", help="list the models this app can run here (tiny variants, cached weights)")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    _add_model_flag(models)
    models.set_defaults(func=cmd_models)

    for commands in (cli_memory, cli_doctor, cli_download, cli_service):    # each module registers its own commands
        commands.add_parsers(sub)
    for command in sub.choices.values():            # every command speaks the CLI's language (--lang, LANG)
        if not any("--lang" in action.option_strings for action in command._actions):
            _add_lang_flag(command)
    return parser


def cmd_models(args: argparse.Namespace) -> int:
    """Print the choices the page's Model list offers (local only: no network, no worker started)."""
    from i2v import model_choice

    found = model_choice.choices(args.model)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    width = max(len(m["name"]) for m in found)
    for m in found:
        mark = "*" if m["current"] else " "
        print(f"{mark} {m['name']:<{width}}  {m['kind']:<4}  {m['title']} ({m['family']})")
    return 0


def make_service(model: str, gpus: str | None = None, backend: str = "local", ray_address: str | None = None):
    """The service over supervised worker processes (one per GPU with `--gpus`, else one), or over GPU workers
    on a Ray cluster (`--backend ray`; Ray is imported only then)."""
    from i2v.service import GenerationService

    if backend == "ray":
        from i2v.ray_backend import RayRunner

        count = env.value("I2V_RAY_WORKERS", os.environ)
        runner = RayRunner(model, address=ray_address, worker_envs=[{} for _ in range(int(count))] if count else None)
    else:
        from i2v import gpu as hardware
        from i2v.worker import WorkerPool, WorkerRunner, fault_counter_from_env, parse_gpus

        faults = fault_counter_from_env()
        runner = WorkerPool([WorkerRunner(model, paths.logs_dir(), gpu=pinned, fault_counter=faults)
                             for pinned in parse_gpus(gpus, hardware.nvml_gpu_count())])
    budget_minutes = float(env.value("I2V_TIME_BUDGET_MINUTES", os.environ))
    return GenerationService(runner, paths.outputs_dir(), paths.logs_dir(), fallback_policy_from_env(),
                             time_budget_s=budget_minutes * 60 or None)


def fallback_policy_from_env():
    """I2V_AUTO_FALLBACK=0 turns automatic OOM retries off; I2V_MAX_ATTEMPTS bounds them."""
    from i2v.runner import FallbackPolicy

    auto = env.value("I2V_AUTO_FALLBACK", os.environ).lower() not in ("0", "false", "no", "off")
    return FallbackPolicy(auto=auto, max_attempts=int(env.value("I2V_MAX_ATTEMPTS", os.environ)))


# --- serve ------------------------------------------------------------------------------------------------
def _write_pid_file(path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n", encoding="utf-8")


def _remove_pid_file(path: Path | None) -> None:
    if path is not None:
        try:
            if path.read_text(encoding="utf-8").strip() == str(os.getpid()):
                path.unlink()
        except OSError:
            pass


def cmd_serve(args: argparse.Namespace) -> int:
    from i2v import health, log_retention, serving, video
    from i2v.image_input import upload_limit_mib
    from i2v.ui import build_ui

    # Before anything is touched (log files, PID file, outputs/): may this instance serve at all?
    host = serving.bind_address(args.host)     # '[::1]' -> '::1'; URLs get the brackets back (url_host)
    try:
        auth = serving.parse_auth(credentials.auth_text(args.auth, args.auth_file))
        serving.check_bind(host, auth)
        busy = serving.port_in_use(host, args.port)   # only a listener counts, not a stopped app's connections
    except serving.ServingError as exc:
        print(f"[i2v] error: {exc.text(args.lang)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if busy:
        print(f"[i2v] error: {serving.busy_port_message(host, args.port, args.lang)}", file=sys.stderr)
        return EXIT_PORT_BUSY
    if args.max_upload_mib is not None:
        os.environ["I2V_MAX_UPLOAD_MIB"] = repr(args.max_upload_mib)
    log_file = setup_logging(args.verbose)
    log_retention.bound_logs(paths.logs_dir())
    _write_pid_file(args.pid_file)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        service = make_service(args.model, args.gpus, args.backend, args.ray_address)
    except I2VError as exc:            # e.g. no Ray, or no cluster at --ray-address
        print(f"[i2v] error: {exc}", file=sys.stderr)
        _remove_pid_file(args.pid_file)
        return EXIT_BAD_INPUT
    video.remove_partials(service.outputs_dir)
    demo = build_ui(service, may_cancel_others=serving.is_loopback(host) and auth is None)
    app_kwargs = serving.app_kwargs(host, login_throttle=auth is not None,
                                    max_body_bytes=serving.body_limit_bytes(upload_limit_mib()))
    app_kwargs["middleware"].append(stream_watch())     # a client whose event stream ended: its job stops
    app_kwargs["routes"] = [health.route(service)]      # GET /healthz, before Gradio's own routes
    try:
        # Gradio takes the host as a URL names it ('[::1]') and binds it without the brackets
        try:
            demo.launch(server_name=serving.url_host(host), server_port=args.port, share=False,
                        prevent_thread_lock=True, allowed_paths=[str(service.outputs_dir)], show_error=False,
                        quiet=True, auth=auth, max_file_size=f"{upload_limit_mib()}mb",
                        app_kwargs=app_kwargs)
        except OSError:   # taken since the check, or (Gradio probes 127.0.0.1 for any host) taken on IPv4
            print(f"[i2v] error: {serving.busy_port_message(host, args.port, args.lang)}", file=sys.stderr)
            return EXIT_PORT_BUSY
        service.runner.start_loading()   # after launch: the worker's imports don't delay the page
        url = f"http://{serving.url_host(host)}:{args.port}"
        print(f"[i2v] serving on {url} (model: {args.model}; log: {log_file})", flush=True)
        log.info("serving on %s, pid %d", url, os.getpid())
        idle_minutes = float(env.value("I2V_IDLE_UNLOAD_MINUTES", os.environ))
        last_idle_check = time.monotonic()
        while not stop.wait(STOP_POLL_S):   # a timed wait, so a signal delivered to another thread is still seen
            if time.monotonic() - last_idle_check > IDLE_CHECK_S:
                last_idle_check = time.monotonic()
                log_retention.bound_logs(paths.logs_dir())      # oom.jsonl kept within its size
                if idle_minutes > 0:
                    service.unload_if_idle(idle_minutes)
        log.info("shutdown requested")
        _shutdown(service)
        # the worker exits while the web server closes: SIGTERM to an idle app returns within 2 s
        closing = threading.Thread(target=service.runner.shutdown, name="i2v-worker-stop")
        closing.start()
        demo.close()
        closing.join()
    finally:
        service.runner.shutdown()
        _remove_pid_file(args.pid_file)
    log.info("stopped cleanly")
    return 0


def stream_watch():
    """The middleware that notices a client's event stream ending early (i2v.ui.streams)."""
    from starlette.middleware import Middleware

    from i2v.ui.streams import StreamWatch

    return Middleware(StreamWatch)


def _shutdown(service) -> None:
    """Cancel the running job at its next step, wait briefly, remove partial files."""
    from i2v import video

    if service.cancel_all():
        deadline = time.monotonic() + SHUTDOWN_GRACE_S     # by the clock: on a loaded machine each wait is longer
        while service.is_busy() and time.monotonic() < deadline:
            time.sleep(STOP_POLL_S)
    video.remove_partials(service.outputs_dir)


# --- generate ---------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from i2v.cli_memory import forced_plan
    from i2v.core.plans import PlanError
    from i2v.core.errors import GenerationCancelled, GenerationFailed, RequestError
    from i2v.service import result_summary

    setup_logging(args.verbose)

    from i2v.core.words import render

    def fail(code: int, kind: str, message: str, key: str | None = None) -> int:
        """An error as text on stderr, or with --json as a JSON object on stdout; the exit code says which."""
        if args.json:
            print(json.dumps({"error": {"kind": kind, "key": key, "message": message}}, ensure_ascii=False))
        else:
            print(f"\nerror: {message}", file=sys.stderr)
        return code

    try:
        forced = forced_plan(args)
    except PlanError as exc:
        return fail(EXIT_BAD_INPUT, "request", f"plan: {exc}", "plan_invalid")
    service = make_service(args.model, args.gpus, args.backend, args.ray_address)
    signal.signal(signal.SIGTERM, lambda *_: service.cancel_all())
    values = {s.name: getattr(args, s.name) for s in SETTINGS}

    def show_progress(update) -> None:
        print(f"\r[i2v] {update.text(args.lang):<28} {update.fraction:6.1%}", end="", file=sys.stderr, flush=True)

    try:   # the service opens the image itself, so its conversions are reported
        result = service.generate(str(args.image), values, progress=show_progress, out_path=args.out, plan=forced)
    except RequestError as exc:
        return fail(EXIT_BAD_INPUT, "request", exc.text(args.lang), exc.key)
    except (GenerationCancelled, KeyboardInterrupt):
        service.cancel_all()
        return fail(EXIT_CANCELLED, "cancelled", render("stopped", args.lang), "stopped")
    except GenerationFailed as exc:
        return fail(EXIT_FAILED, "failed", exc.text(args.lang), exc.key)
    finally:
        service.runner.shutdown()
    print(file=sys.stderr)
    if result.banner:
        print(f"warning: {result.banner}", file=sys.stderr)
    for note in result.input_notes:
        print(f"note: {note.text(args.lang)}", file=sys.stderr)
    summary = result_summary(result)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        req = result.request
        print(f"video:   {result.video_path}\nsidecar: {result.sidecar_path}\n"
              f"size:    {req.width}x{req.height}, {req.num_frames} frames at {req.fps} fps, "
              f"{req.num_inference_steps} steps, seed {result.seed}\ntimings: {result.timings}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no public API
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help")):
        argv.insert(0, "serve")
    args = parser.parse_args(argv)
    if getattr(args, "vram_limit", None) is not None:   # the workers and the advisor read it from here
        os.environ["I2V_VRAM_LIMIT_GIB"] = repr(args.vram_limit)
    return args.func(args)
