"""The `download` command of main.py (registered by i2v.cli): a model's weights into the Hugging Face cache with
a progress bar (one line per file when stderr is not a terminal), free disk checked first, resumable, verified.
Kept in its own module so cli.py stays small."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from i2v.download_progress import Console, size_text

EXIT_OK, EXIT_FAIL = 0, 1


def add_parsers(subparsers) -> None:
    """Register `download` on main.py's argparse subparsers."""
    from i2v.models import FAMILIES

    aliases = ", ".join(f.aliases[0] for f in FAMILIES)
    dl = subparsers.add_parser("download", help="download a model's weights (resumable, verified) for --model")
    dl.add_argument("model", help=f"a family alias ({aliases}), 'auto' or a Hugging Face repo id (owner/name)")
    dl.add_argument("--revision", default="main", help="a branch, tag or commit of the repo (default: main)")
    dl.add_argument("--dir", default=None, metavar="D",
                    help="the Hugging Face cache folder to download into (default: HF_HUB_CACHE, else HF_HOME/hub)")
    dl.add_argument("--json", action="store_true", help="print the result as JSON")
    dl.set_defaults(func=cmd_download)


def _files_to_stderr() -> logging.Handler:
    """The per-file lines of i2v.downloads (and huggingface_hub's resume warnings) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    for name in ("i2v.downloads",):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    return handler


def cmd_download(args: argparse.Namespace) -> int:
    from i2v import downloads
    from i2v.core.errors import I2VError
    from i2v.core.words import default_lang, render
    from i2v.models import interpret

    if args.dir:
        os.environ["HF_HUB_CACHE"] = os.path.abspath(os.path.expanduser(args.dir))
    lang = getattr(args, "lang", None) or default_lang()
    meaning = interpret(args.model)
    if meaning.kind not in ("repo", "auto"):
        print(f"error: {render('download_not_a_repo', lang, value=args.model)}", file=sys.stderr)
        return EXIT_FAIL
    repo_id, family = meaning.target, meaning.family
    _files_to_stderr()
    console = Console()

    def planned(the_plan, needed: int) -> None:
        print(render("download_plan", lang, repo=repo_id, commit=the_plan.commit[:8], files=len(the_plan.files),
                     variant=the_plan.variant or "default", total=size_text(the_plan.total_bytes),
                     needed=size_text(needed), folder=downloads.repo_entry(repo_id)), file=sys.stderr)

    try:
        snapshot = downloads.download(repo_id, args.revision, family=family, on_progress=console, on_plan=planned)
    except I2VError as exc:
        console.end()
        print(f"error: {exc.text(lang)}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        console.end()
        print(f"\n{downloads.DownloadError('download_cancelled', repo=repo_id).text(lang)}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - network and Hub errors: said in one line, resumable
        console.end()
        detail = f"{type(exc).__name__}: {exc}"
        print(f"error: {downloads.DownloadError('download_failed', repo=repo_id, detail=detail).text(lang)}",
              file=sys.stderr)
        return EXIT_FAIL
    console.end()
    spec = args.model if not args.dir and args.revision == "main" else str(snapshot)   # else: the folder itself
    summary = {"repo": repo_id, "revision": args.revision, "snapshot": str(snapshot), "family": family.name,
               "model_flag": f"--model {spec}"}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render("download_ready", lang, snapshot=snapshot, spec=spec))
    return EXIT_OK
