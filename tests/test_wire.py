"""Every failure type crosses a process boundary the same way (i2v.core.wire), for the local worker's pipe and
Ray alike: pickled, or as the wire dict, it comes back as its own type with its key and params, in both
languages."""
import pickle

import pytest

import i2v.core.settings  # noqa: F401 - registers the field labels messages name
from i2v.core import errors
from i2v.core.errors import (WIRE_TYPES, BusyError, ClusterUnavailable, GenerationCancelled, GenerationFailed,
                             I2VError, OutOfMemoryFailure, RequestError, WorkerLost)
from i2v.core.wire import from_wire, to_wire

SUGGESTION = {"prompt": "a cat", "resolution": 256, "num_frames": 8, "offload": "model"}
REPORT = {"phase": "decode", "requested": {"prompt": "a cat", "resolution": 256, "num_frames": 16,
                                           "offload": "none"}, "attempts": [{}, {}]}

CASES = [
    RequestError("field_too_small", field="num_frames", value="0", minimum="2"),
    BusyError("busy"),
    GenerationFailed("generation_failed", detail="RuntimeError: boom", where="worker"),
    GenerationCancelled("stopped"),
    WorkerLost("worker_silent", gib="1.50", device="cuda", detail="no heartbeat"),
    ClusterUnavailable("ray_unreachable", address="10.0.0.1:6379"),
    OutOfMemoryFailure.of("decode", 2, "cuda", REPORT, SUGGESTION),
    OutOfMemoryFailure.of("denoise", 1, "cpu", {}, None),
]


def test_every_wire_type_has_a_case():
    assert {type(c).__name__ for c in CASES} == set(WIRE_TYPES) - {"I2VError"}


@pytest.mark.parametrize("exc", CASES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("carry", ["pickle", "wire", "wire+pickle"])
def test_round_trip_keeps_type_key_params_and_both_languages(exc, carry):
    if carry == "pickle":
        back = pickle.loads(pickle.dumps(exc))
    elif carry == "wire":
        back = from_wire(to_wire(exc))
    else:          # what the worker's pipe and Ray really do: the dict itself is pickled
        back = from_wire(pickle.loads(pickle.dumps(to_wire(exc))))
    assert type(back) is type(exc)
    assert (back.key, back.params) == (exc.key, exc.params)
    assert str(back) == str(exc)
    assert back.text("zh") == exc.text("zh") and back.text("zh") != back.text("en")


def test_the_out_of_memory_failure_is_worded_by_the_catalogue():
    failure = OutOfMemoryFailure.of("decode", 2, "cuda", REPORT, SUGGESTION)
    assert isinstance(failure, GenerationFailed) and isinstance(failure, I2VError)
    assert failure.suggestion == SUGGESTION and failure.report["attempts"] == [{}, {}]
    assert "Out of GPU memory while decoding frames (2 attempt(s))" in failure.text("en")
    # only what changed is suggested, named by its label in each language (the prompt never)
    assert "Frames 8" in failure.text("en") and "帧数 8" in failure.text("zh")
    assert "a cat" not in failure.text("en")
    assert "Resolution" not in failure.text("en")      # asked 256, suggested 256: unchanged
    assert "Nothing smaller" in OutOfMemoryFailure.of("denoise", 1, "cpu").text("en")


def test_a_foreign_failure_arrives_as_generation_failed_with_its_detail():
    back = from_wire(to_wire(ZeroDivisionError("division by zero"), where="node-3"))
    assert type(back) is GenerationFailed
    assert back.params == {"detail": "ZeroDivisionError: division by zero", "where": "node-3"}
    assert "ZeroDivisionError" not in back.text("en")          # the page never shows a class name


def test_an_unknown_type_name_arrives_as_generation_failed():
    back = from_wire({"type": "SomethingNew", "key": "busy", "params": {}})
    assert type(back) is GenerationFailed and back.key == "busy"


def test_a_subclass_the_wire_does_not_know_travels_as_its_known_base():
    class Special(GenerationCancelled):
        pass

    back = from_wire(to_wire(Special("stopped")))
    assert type(back) is GenerationCancelled and back.key == "stopped"


def test_errors_module_needs_nothing_above_it():
    """No import loop: errors.py imports no other i2v.core module but the catalogue."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(errors.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith("i2v")} <= {"i2v.core"}


def test_a_lost_worker_names_the_memory_it_gave_back_in_the_readers_words():
    gpu = WorkerLost("worker_died", gib="2.00", device="cuda", detail="exit code 86")
    cpu = WorkerLost("worker_died", gib="2.00", device="cpu", detail="exit code 86")
    assert "2.00 GiB of GPU memory released (exit code 86)" in gpu.text("en")
    assert "2.00 GiB of memory released" in cpu.text("en") and "显存" in gpu.text("zh")
