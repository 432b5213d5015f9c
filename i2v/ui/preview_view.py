"""The page's live preview: an image above the video that shows the running job's latest strip (i2v.preview),
polled from the service's board (i2v.preview_board) while this tab's job runs, hidden when the video arrives
or the job ends; and the setting (every N steps, 0 = off), per tab, that the service reads when the job starts.
"""
from __future__ import annotations

import threading

import gradio as gr

from i2v.i18n import t
from i2v.preview import DEFAULT_EVERY, decode
from i2v.ui.event_helpers import session_of

POLL_S = 1.0           # how often a tab with a running job asks for a newer strip
MAX_EVERY = 10


class PreviewView:
    def __init__(self, service):
        self.board = service.previews
        self._shown: dict[str, int] = {}       # per tab: the sequence number of the strip on screen
        self._lock = threading.Lock()

    # --- layout ------------------------------------------------------------------------------------------
    def image(self) -> gr.Image:
        """The preview itself: put it next to the job's progress (above the video)."""
        self.view = gr.Image(label=t("live_preview"), type="pil", interactive=False, visible=False, height=160,
                             elem_id="i2v-live-preview", format="jpeg", buttons=[])
        return self.view

    def setting(self) -> gr.Slider:
        self.every = gr.Slider(minimum=0, maximum=MAX_EVERY, step=1, value=DEFAULT_EVERY, label=t("preview_every"),
                               info=t("preview_every_help"), elem_id="i2v-preview-every")
        return self.every

    # --- wiring ------------------------------------------------------------------------------------------
    def wire(self, demo: gr.Blocks, generate_button: gr.Button, generating) -> None:
        """The interval follows the slider; Generate starts the polling, the job's end (video, Stop, failure)
        stops it and hides the preview."""
        self.timer = gr.Timer(POLL_S, active=False)
        quiet = dict(api_name=False, queue=False, show_progress="hidden")
        demo.load(self.set_every, inputs=[self.every], **quiet)
        self.every.change(self.set_every, inputs=[self.every], **quiet)
        generate_button.click(self.start, outputs=[self.timer, self.view], **quiet)
        self.timer.tick(self.tick, outputs=[self.view], **quiet)
        generating.then(self.stop, outputs=[self.timer, self.view], **quiet)
        generating.failure(self.stop, outputs=[self.timer, self.view], **quiet)
        demo.unload(self.forget)

    def set_every(self, every, request: gr.Request) -> None:
        self.board.set_every(session_of(request), every)

    def start(self, request: gr.Request):
        self._mark(session_of(request), 0)
        return gr.Timer(active=True), gr.update(value=None, visible=False)

    def tick(self, request: gr.Request):
        """A newer strip of this tab's job: shown; nothing newer: the page is left as it is."""
        owner = session_of(request)
        latest = self.board.latest(owner)
        with self._lock:
            if latest is None or latest[0] == self._shown.get(owner):
                return gr.update()
            self._shown[owner] = latest[0]
        return gr.update(value=decode(latest[1]), visible=True)

    def stop(self, request: gr.Request):
        self._mark(session_of(request), 0)
        return gr.Timer(active=False), gr.update(value=None, visible=False)

    def forget(self, request: gr.Request) -> None:
        owner = session_of(request)
        self.board.forget(owner)
        with self._lock:
            self._shown.pop(owner, None)

    def _mark(self, owner, seq: int) -> None:
        with self._lock:
            self._shown[owner] = seq
