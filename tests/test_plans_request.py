"""A request is the user's settings plus a Plan; the Plan checks its parts once; offload modes are one table."""
import pickle

import pytest

from i2v.core.offload import OFFLOAD_BY_NAME, OFFLOADS, OffloadMode
from i2v.core.plans import PLAN_KEYS, Plan, PlanError, check_forced
from i2v.core.request import WIRE_NAMES, GenerationRequest


def make(**parts):
    return GenerationRequest(prompt="a boat", width=256, height=256, num_frames=8, fps=8, num_inference_steps=4,
                             guidance_scale=9.0, **parts)


def test_the_plan_is_one_object_and_the_flat_form_keeps_the_public_names():
    request = make(offload="model", decode_chunk_size=2, chunk_tokens=4096)
    assert request.plan == Plan(offload="model", decode_chunk=2, chunk_tokens=4096)
    assert (request.offload, request.decode_chunk_size, request.chunk_tokens) == ("model", 2, 4096)
    flat = request.as_dict()
    assert "plan" not in flat and flat["decode_chunk_size"] == 2 and "decode_chunk" not in flat
    assert set(flat) >= set(WIRE_NAMES.values())
    assert GenerationRequest(**flat) == request                    # what the worker and Ray rebuild
    assert pickle.loads(pickle.dumps(request)) == request


def test_replace_routes_plan_parts_to_the_plan_and_settings_to_the_request():
    request = make()
    changed = request.replace(num_frames=16, vae_tiling=True, decode_chunk_size=4)
    assert changed.num_frames == 16 and changed.plan == Plan(vae_tiling=True, decode_chunk=4)
    assert request.plan == Plan() and request.num_frames == 8      # frozen: the original is untouched
    assert changed.with_plan(Plan(offload="group")).plan == Plan(offload="group")
    with pytest.raises(AttributeError):
        request.decode_chunk        # the plan's own name is read on the plan, not on the request


@pytest.mark.parametrize("key, bad", [("offload", "disk"), ("weights_dtype", "int4"), ("cfg_split", 1),
                                      ("chunk_tokens", -1), ("chunk_tokens", True), ("decode_chunk", 0),
                                      ("vae_tiling", "yes"), ("text_encoder_cpu", None)])
def test_a_plan_that_exists_is_valid(key, bad):
    with pytest.raises(PlanError) as caught:
        Plan(**{key: bad})
    assert key in str(caught.value)
    with pytest.raises(PlanError):
        make().replace(**{WIRE_NAMES[key]: bad})


def test_forced_parts_go_through_the_same_check_and_every_problem_is_named():
    assert check_forced({"offload": "group", "chunk_tokens": None}) == {"offload": "group"}
    with pytest.raises(PlanError) as caught:
        check_forced({"offload": "disk", "decode_chunk": 0, "colour": "red"})
    message = str(caught.value)
    assert "offload" in message and "decode_chunk" in message and "'colour'" in message
    assert set(Plan().as_dict()) == set(PLAN_KEYS) == set(WIRE_NAMES)


def test_offload_modes_are_one_table_the_engine_reads(monkeypatch):
    """A new mode is a row: one that behaves like group offload without pinned copies is predicted from the row
    alone (same device peak as group, less host RAM), with no code naming it."""
    from i2v.configs import load_memory_model
    from i2v.core import memory_peak
    from i2v.core.memory import predict
    from i2v.core.settings import OFFLOAD_MODES

    assert OFFLOAD_MODES == tuple(mode.name for mode in OFFLOADS)
    row = OffloadMode("group_unpinned", OFFLOAD_BY_NAME["group"].resident, OFFLOAD_BY_NAME["group"].moves,
                      False, "fits_with_offload")
    monkeypatch.setitem(OFFLOAD_BY_NAME, row.name, row)
    monkeypatch.setattr(memory_peak, "OFFLOAD_MODES", OFFLOAD_MODES + (row.name,))
    model = load_memory_model()
    request = make().replace(width=512, height=512, num_frames=16)
    group, unpinned = predict(model, request, offload="group"), predict(model, request, offload=row.name)
    assert [p.total_bytes for p in unpinned.phases] == [p.total_bytes for p in group.phases]
    assert unpinned.host_bytes < group.host_bytes
