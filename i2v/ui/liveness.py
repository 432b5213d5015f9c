"""Ending a job whose caller went away or cancelled it through Gradio.

Gradio marks a running event dead (`Event.alive = False`) when the page that sent it closes (its event stream
disconnects), and drops it from the queue's active jobs when a client cancels it (gradio_client's
`job.cancel()`, Gradio's `/cancel` route): the asyncio task is cancelled, but the thread running our handler is
not told, so the job would run on and block everyone behind it. `CallerWatch` polls that state while a handler
runs and calls `on_gone` once when the event is no longer alive. Jobs of a closed tab still waiting in the queue
are removed by Gradio itself.

Relies on Gradio 6.31's queue internals (`LocalContext.blocks/event_id`, `Queue.active_jobs`, `Event.alive`),
pinned in pyproject.toml; tests/test_stop_and_restart.py proves it through a real app and real clients.
"""
from __future__ import annotations

import logging
import threading

from i2v.ui import streams

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25


def current_event() -> tuple[object | None, str | None]:
    """(the Blocks, the event id) of the Gradio event this thread serves; (None, None) outside one."""
    from gradio.context import LocalContext

    return LocalContext.blocks.get(None), LocalContext.event_id.get(None)


def event_alive(blocks, event_id: str) -> bool:
    """Whether Gradio still runs this event for a caller that is there: False once the caller's page closed,
    or the event was cancelled (it is then no longer among the queue's active jobs)."""
    queue = getattr(blocks, "_queue", None)
    for events in list(getattr(queue, "active_jobs", None) or ()):
        for event in events or ():
            if getattr(event, "_id", None) == event_id:
                return bool(event.alive)
    return False


class CallerWatch:
    """While the `with` body runs, check every WATCH_INTERVAL_S that the caller is still there (its event alive,
    its session's event stream not ended early: ui/streams.py); once it is not, call on_gone() (once) and set
    `gone`. Does nothing outside a Gradio event (direct calls, tests)."""

    def __init__(self, on_gone, interval_s: float = WATCH_INTERVAL_S, event=None, session: str | None = None):
        self.on_gone, self.interval_s, self.session = on_gone, interval_s, session
        self.blocks, self.event_id = event if event is not None else current_event()
        self.gone = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "CallerWatch":
        if self.blocks is not None and self.event_id and event_alive(self.blocks, self.event_id):
            self._thread = threading.Thread(target=self._watch, name="i2v-caller-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(self.interval_s):
            if not event_alive(self.blocks, self.event_id) or streams.lost(self.session):
                self.gone.set()
                log.info("the caller of event %s went away or cancelled it; stopping its job", self.event_id)
                try:
                    self.on_gone()
                except Exception:  # noqa: BLE001 - a failed cancel is logged; the watch ends either way
                    log.exception("stopping the job of a departed caller failed")
                return
