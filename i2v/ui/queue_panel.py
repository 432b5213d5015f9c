"""The queue panel: every generate job, running or waiting, with its place, whose it is ("you" or "another tab
or client"), its settings, the time so far and the time left; a cancel for your own jobs, and, on an app bound
to the loopback without a login (one local user), for anyone's after a confirmation. The Generate button says
when a click would join a queue. Reads the running jobs from the service and the waiting ones from Gradio's
queue (i2v.ui.job_queue); refreshed by the page's timer."""
from __future__ import annotations

import time

import gradio as gr

from i2v.core.settings import SETTINGS
from i2v.i18n import lang_of, static_text, text
from i2v.ui import job_queue
from i2v.ui.format import duration_text

RUNNING, WAITING = "run", "wait"


def _key(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def values_of(data: list) -> dict:
    """The settings a waiting event was sent with (image first, then the table's rows in order)."""
    return {s.name: value for s, value in zip(SETTINGS, data[1:])}


class QueuePanel:
    def __init__(self, service, may_cancel_others: bool = False):
        self.service = service
        self.may_cancel_others = may_cancel_others
        self.demo = None                 # set by build_ui once the Blocks exist
        self._seconds: dict[tuple, float | None] = {}
        self._captions: dict[str | None, str] = {}     # session -> the Generate caption it shows

    # --- data --------------------------------------------------------------------------------------------
    def jobs(self) -> list[dict]:
        """Running jobs first, then waiting ones in queue order: key, owner, values, elapsed, seconds left
        (running) or until start (waiting), place (0 = running)."""
        now, ahead, rows = time.monotonic(), 0.0, []
        for job in self.service.running_jobs():
            values = job.get("values") or {}
            elapsed = now - job["started"] if job.get("started") else 0.0
            total = self._predicted_seconds(values)
            left = max(0.0, total - elapsed) if total is not None else None
            ahead += left or 0.0
            rows.append({"key": _key(RUNNING, job["job"]), "owner": job["owner"], "values": values, "place": 0,
                         "elapsed": elapsed, "left": left})
        waiting = job_queue.waiting_jobs(self.demo._queue) if self.demo is not None else []
        for place, job in enumerate(waiting, start=1):
            values = values_of(job["data"])
            rows.append({"key": _key(WAITING, job["event"]), "owner": job["owner"], "values": values,
                         "place": place, "elapsed": now - job["since"], "left": ahead})
            ahead += self._predicted_seconds(values) or 0.0
        return rows

    def _predicted_seconds(self, values: dict) -> float | None:
        """The estimate's seconds for these settings (cached: the panel refreshes every few seconds)."""
        key = tuple(sorted((k, repr(v)) for k, v in values.items() if k != "prompt" and k != "negative_prompt"))
        if key not in self._seconds:
            try:
                self._seconds[key] = self.service.estimate(values).get("seconds_estimate")
            except Exception:  # noqa: BLE001 - values the table refuses: no estimate, the job is still listed
                self._seconds[key] = None
        return self._seconds[key]

    def may_cancel(self, row: dict, session: str | None) -> bool:
        return bool(session) and row["owner"] == session or self.may_cancel_others

    # --- what the page shows -----------------------------------------------------------------------------
    def render(self, rows: list[dict], session: str | None, lang: str) -> str:
        if not rows:
            return text(lang, "queue_empty")
        lines = []
        for row in rows:
            values = row["values"]
            who = text(lang, "queue_you") if session and row["owner"] == session else text(lang, "queue_other")
            settings = text(lang, "queue_settings", resolution=values.get("resolution", "?"),
                            frames=values.get("num_frames", "?"), steps=values.get("num_inference_steps", "?"))
            if row["place"] == 0:
                parts = [f"▶ **{text(lang, 'queue_running')}**", who, settings,
                         text(lang, "queue_elapsed", time=duration_text(row["elapsed"], lang))]
                if row["left"] is not None:
                    parts.append(text(lang, "queue_left", time=duration_text(row["left"], lang)))
            else:
                parts = [f"**{row['place']}**", who, settings,
                         text(lang, "queue_waited", time=duration_text(row["elapsed"], lang)),
                         text(lang, "queue_starts", time=duration_text(row["left"], lang))]
            lines.append("- " + " · ".join(parts))
        return "\n".join(lines)

    def choices(self, rows: list[dict], session: str | None, lang: str) -> list[tuple[str, str]]:
        """The jobs this caller may cancel, as (label, key)."""
        return [((f"▶ {text(lang, 'queue_running')}" if row["place"] == 0 else f"#{row['place']}") + " · " +
                 (text(lang, "queue_you") if row["owner"] == session else text(lang, "queue_other")), row["key"])
                for row in rows if self.may_cancel(row, session)]

    def view(self, chosen: str | None, request: gr.Request):
        """The panel's text, its job chooser (the job chosen stays chosen while it is there) and the Generate
        button's caption, for this tab."""
        lang, session = lang_of(request), getattr(request, "session_hash", None)
        rows = self.jobs()
        choices = self.choices(rows, session, lang)
        caption = text(lang, "generate_queued", ahead=len(rows)) if rows else static_text(lang, "generate")
        keys = [key for _, key in choices]
        value = chosen if chosen in keys else (keys[0] if keys else None)
        # the caption is sent only when it changes: a button redrawn every tick could lose a click
        changed = self._captions.get(session) != caption
        self._captions[session] = caption
        return (self.render(rows, session, lang), gr.update(choices=choices, value=value),
                gr.update(value=caption) if changed else gr.update())

    def forget(self, request: gr.Request) -> None:
        """The page went away (its unload event)."""
        self._captions.pop(getattr(request, "session_hash", None), None)

    def data(self, request: gr.Request) -> list[dict]:
        """The queue for API clients: place (0 = running), mine, settings, seconds so far and left (running)
        or until it starts (waiting), the key to cancel it with, and whether this caller may."""
        session = getattr(request, "session_hash", None)
        return [{"place": row["place"], "mine": bool(session) and row["owner"] == session, "key": row["key"],
                 "settings": {k: row["values"].get(k) for k in ("resolution", "num_frames", "num_inference_steps")},
                 "elapsed_s": round(row["elapsed"], 1),
                 "left_s": None if row["left"] is None else round(row["left"], 1),
                 "may_cancel": self.may_cancel(row, session)} for row in self.jobs()]

    async def cancel_key(self, key: str | None, request: gr.Request) -> str:
        """API: cancel one job by its key from `queue` (the call itself is the confirmation)."""
        return (await self.confirm_cancel(key, request))[1]

    # --- cancelling --------------------------------------------------------------------------------------
    async def ask_cancel(self, key: str | None, request: gr.Request):
        """Your own job: cancelled at once. Another's (loopback without a login only): the confirmation row."""
        return await self._answer(key, request, confirmed=False)

    async def confirm_cancel(self, key: str | None, request: gr.Request):
        return await self._answer(key, request, confirmed=True)

    async def _answer(self, key: str | None, request: gr.Request, confirmed: bool):
        """(the confirmation row's visibility, the message) for a cancel of the job named by key."""
        lang, session = lang_of(request), getattr(request, "session_hash", None)
        row = next((r for r in self.jobs() if r["key"] == key), None)
        if row is None:
            return gr.update(visible=False), text(lang, "queue_gone")
        if not self.may_cancel(row, session):
            return gr.update(visible=False), text(lang, "queue_not_yours")
        if row["owner"] != session and not confirmed:
            return gr.update(visible=True), ""
        return gr.update(visible=False), await self._cancel(row, lang)

    async def _cancel(self, row: dict, lang: str) -> str:
        kind, ident = row["key"].split(":", 1)
        if kind == RUNNING:
            done = self.service.cancel_job(ident)
        else:
            from i2v.ui.handlers import error

            done = await job_queue.remove_waiting(self.demo, ident, error(lang, text(lang, "queue_cancelled_by_other")))
        return text(lang, "queue_cancelled" if done else "queue_gone")
