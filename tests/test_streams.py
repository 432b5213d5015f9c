"""StreamWatch marks a session whose event stream ended before its last body (a client gone mid-job)."""
import asyncio

import pytest

from i2v.ui import streams
from i2v.ui.streams import StreamWatch


def scope(session: str, path: str = "/gradio_api/queue/data") -> dict:
    return {"type": "http", "path": path, "query_string": f"session_hash={session}".encode()}


async def _noop_receive():
    return {"type": "http.request"}


def run(app, the_scope, fail_send=False):
    async def send(message):
        if fail_send and message["type"] == "http.response.body":
            raise OSError("the client went away")

    async def call():
        await StreamWatch(app)(the_scope, _noop_receive, send)

    asyncio.run(call())


async def streaming_app(scope_, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_a_stream_whose_send_fails_marks_its_session_lost_and_a_new_one_clears_it():
    with pytest.raises(OSError):
        run(streaming_app, scope("s1"), fail_send=True)
    assert streams.lost("s1") and not streams.lost("s2") and not streams.lost(None)
    run(streaming_app, scope("s1"))                  # the same session streams again, to the end
    assert not streams.lost("s1")


def test_a_stream_ended_without_its_last_body_is_lost_other_paths_are_not_watched():
    async def cut_short(scope_, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})

    run(cut_short, scope("s3"))
    assert streams.lost("s3")
    run(cut_short, scope("s4", path="/gradio_api/upload"))     # not an event stream
    assert not streams.lost("s4")
