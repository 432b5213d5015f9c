"""One catalogue of words (i2v.core.words): every key in both languages with the same placeholders, and no
user-facing English sentence written anywhere else in i2v/.

The scan reads i2v/ with ast and flags string literals that look like sentences (four or more words, starting
with a capital or ending in '.', '!' or '?'). Not flagged: docstrings, log calls (log.info/debug/warning/...:
the logs are for developers), argparse help and descriptions (the CLI's --help stays in English, as the
flags themselves do), the settings tables (core/settings.py and each family's rows in i2v/models/ carry their
English and Chinese label side by side: the settings' own words) and core/env.py (the README's table of
environment variables, for whoever deploys the app). MUST_STAY lists the few written texts that stay, each
with its reason; anything else fails.
"""
import ast
import re
import string
from pathlib import Path

import pytest

from i2v.core import errors, words
from i2v.core.words import failures
from tests.conftest import ROOT

LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
LOG_OWNERS = {"log", "logger", "logging"}
ARGPARSE_CALLS = {"add_argument", "ArgumentParser", "add_parser", "add_subparsers", "add_argument_group",
                  "add_mutually_exclusive_group",
                  "_add_env_argument"}   # i2v/cli.py: add_argument with its default from an environment variable
WORD_TABLE_FILES = {"i2v/core/settings.py", "i2v/core/env.py", "i2v/models/wan.py", "i2v/models/ltx.py",
                    "i2v/models/i2vgen_xl.py"}

# Written text that must stay, each with its reason on its line.
MUST_STAY = {
    '# Written by `main.py service install`; `main.py s',        # i2v/service_unit.py: the unit file's own lines
    'commands:\n  start (default)  check the port (names',       # i2v/control_options.py: the scripts' --help epilog (--help stays English)
    'CUDA context + library workspaces per process',             # i2v/core/memory_tables.py: memory.toml's constants table (its help column, for whoever edits memory.toml)
    'CUDA out of memory (injected by I2V_INJECT_OOM at ',        # i2v/worker/child.py: a test fault imitating torch's own OOM exception text
}
KEY_CHARS = 50


def _literal(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def looks_like_a_sentence(text: str) -> bool:
    tokens = [t for t in text.split() if re.search(r"[A-Za-z]{2}", t)]
    stripped = text.strip()
    return len(tokens) >= 4 and (stripped[:1].isupper() or stripped.endswith((".", "!", "?")))


def _exempt_nodes(tree) -> set[int]:
    """Docstrings, everything inside a log call or an argparse call, and an f-string's pieces."""
    exempt = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                exempt.add(id(body[0].value))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if (name in LOG_METHODS and owner in LOG_OWNERS) or name in ARGPARSE_CALLS:
                exempt.update(id(sub) for sub in ast.walk(node))
        elif isinstance(node, ast.JoinedStr):
            exempt.update(id(v) for v in node.values)
    return exempt


def sentences_in(source: str) -> list[str]:
    tree = ast.parse(source)
    exempt = _exempt_nodes(tree)
    found = []
    for node in ast.walk(tree):
        text = None if id(node) in exempt else _literal(node)
        if text is not None and looks_like_a_sentence(text):
            found.append(text[:KEY_CHARS])
    return found


def _modules():
    for path in sorted((ROOT / "i2v").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if not rel.startswith("i2v/core/words/") and rel not in WORD_TABLE_FILES:
            yield rel, path.read_text(encoding="utf-8")


def test_the_scan_sees_a_sentence_and_spares_logs_docstrings_and_argparse():
    source = ('"""A docstring that is a whole sentence."""\n'
              'import argparse\n'
              'log.info("The worker started on the GPU now.")\n'
              'argparse.ArgumentParser().add_argument("--x", help="Some help text for the flag.")\n'
              'raise ValueError(f"Cannot write to {folder} because it is full.")\n'
              'KEY = "not_a_sentence"\n')
    assert sentences_in(source) == ["Cannot write to {} because it is full."]


def test_no_user_facing_sentence_outside_the_catalogue():
    found = {(rel, text) for rel, source in _modules() for text in sentences_in(source)}
    new = sorted((rel, text) for rel, text in found if text not in MUST_STAY)
    assert new == [], "user-facing English outside i2v/core/words: add a catalogue key and render it"


def _error_classes(sources: dict[str, str]) -> set[str]:
    """Names of I2VError and every class deriving from it anywhere in i2v/ (by name, to a fixpoint)."""
    family, bases = {"I2VError"}, {}
    for source in sources.values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
    grew = True
    while grew:
        grew = False
        for name, parents in bases.items():
            if name not in family and parents & family:
                family.add(name)
                grew = True
    return family


def test_i2v_errors_are_raised_with_catalogue_keys():
    sources = dict(_modules()) | {"i2v/core/settings.py": (ROOT / "i2v/core/settings.py").read_text()}
    family = _error_classes(sources)
    raw = {}
    for rel, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and node.args:
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                text = _literal(node.args[0])
                if name in family and text is not None and not words.has(text):
                    raw.setdefault(rel, []).append(text[:KEY_CHARS])
    assert raw == {}, \
        "raise I2VError(key, **params) with a key of i2v/core/words, not English"


# Callers still passing text made elsewhere through the "text" key (modules other engineers own): each should
# pass its own key and params (control_already_running, control_systemd, family_*). A new one fails.
TEXT_KEY_CALLERS = {
    "i2v/control.py": 2,         # AlreadyRunning(already_running_message(...)), ControlError(systemd_notice(...))
}


def test_an_i2v_error_refuses_a_key_not_in_the_catalogue():
    with pytest.raises(errors.NotAKey, match="'Some English'"):
        errors.I2VError("Some English")
    with pytest.raises(errors.NotAKey, match="busy_typo"):
        errors.GenerationFailed("busy_typo")


def test_the_text_key_is_used_only_by_the_known_callers():
    uses = {}
    for rel, source in _modules():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and node.args and _literal(node.args[0]) == "text":
                uses[rel] = uses.get(rel, 0) + 1
    assert uses == TEXT_KEY_CALLERS


def test_a_lost_worker_says_why_in_the_reader_s_language():
    from i2v.worker.watchdog import Watchdog, WatchdogSettings

    now = [0.0]
    dog = Watchdog(WatchdogSettings(floor_s=5, step_factor=2, load_timeout_s=9, cancel_grace_s=1), lambda: now[0])
    dog.beat("denoise")
    now[0] = 7.0
    verdict = dog.check(cancel_requested=False)
    lost = errors.WorkerLost("worker_silent", gib="1.00", device="cpu", detail_key=verdict.key, **verdict.params)
    for lang in ("en", "zh"):
        detail = words.render("lost_no_heartbeat", lang, seconds="7", phase="denoise")
        assert detail in lost.text(lang) and verdict.detail == words.render(verdict.key, "en", **verdict.params)
    assert lost.text("en") != lost.text("zh")


def test_load_report_details_come_from_the_catalogue():
    from i2v import pipeline as pl

    outcome = pl.dtype_outcome(pl.plan_load("cpu", has_xformers=False))
    assert outcome.key == "load_cpu_float32" and outcome.detail == words.render(outcome.key, "en")
    assert words.render(outcome.key, "zh") != outcome.detail


SUBJECTS = words.SUBJECTS


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.__name__.rsplit(".", 1)[-1])
def test_every_key_is_in_both_languages_with_the_same_placeholders(subject):
    assert set(subject.EN) == set(subject.ZH)
    fields = lambda template: sorted({f[1] for f in string.Formatter().parse(template) if f[1] is not None})
    assert {k: fields(v) for k, v in subject.EN.items()} == {k: fields(v) for k, v in subject.ZH.items()}


def test_a_key_lives_in_one_subject_and_no_file_is_long():
    keys = [k for s in SUBJECTS for k in s.EN]
    assert len(keys) == len(set(keys)) == len(words.TABLES["en"])
    for path in (ROOT / "i2v" / "core" / "words").glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, path


def test_render_fills_placeholders_and_refuses_an_unknown_key():
    assert words.render("plan_chunks", "en", tokens="4K") == "denoiser run in chunks of 4K tokens (exact)"
    assert "4K" in words.render("plan_chunks", "zh", tokens="4K") and "token" in words.render("plan_chunks", "zh",
                                                                                               tokens=1)
    with pytest.raises(KeyError):
        words.render("Out of memory while denoising.", "en")
    assert errors.I2VError("busy").text("zh") == failures.ZH["busy"]


@pytest.mark.parametrize("environ, lang", [({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "en_US.UTF-8"}, "en"),
                                           ({}, "en"), ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),
                                           ({"LANG": "C", "LC_MESSAGES": "zh_TW"}, "zh")])
def test_the_cli_language_follows_the_locale(environ, lang):
    assert words.default_lang(environ) == lang


@pytest.mark.parametrize("locale, lang", [("zh_CN.UTF-8", "zh"), ("en_GB.UTF-8", "en")])
def test_cli_generate_takes_lang_from_the_locale_and_progress_speaks_it(monkeypatch, locale, lang):
    from i2v import cli
    from i2v.service import ProgressUpdate

    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", locale)
    args = cli.build_parser().parse_args(["generate", "--image", "in.png", "--prompt", "p"])
    assert args.lang == lang
    assert cli.build_parser().parse_args(["generate", "--image", "in.png", "--prompt", "p", "--lang", "en"]).lang == "en"
    shown = ProgressUpdate("denoise", 3, 10, 0.5).text(args.lang)
    assert shown == words.render("progress_denoise", lang) + " 3/10"


def test_every_cli_command_takes_lang_from_the_locale(monkeypatch):
    from i2v import cli

    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    commands = cli.build_parser()._subparsers._group_actions[0].choices   # noqa: SLF001
    assert {"serve", "doctor", "estimate", "download", "models", "service"} <= set(commands)
    defaults = {name: next(a.default for a in parser._actions if "--lang" in a.option_strings)
                for name, parser in commands.items()}
    assert set(defaults.values()) == {"zh"}, defaults
