"""The Models panel: each model family's weights with their state (not downloaded / downloading x of y GB at
z MB/s, ETA / paused / ready, size on disk / damaged), and Download, Cancel and Delete (after "I am sure"; only
that repo's Hugging Face cache entry). A download started here runs in a thread of the server (i2v.downloads);
one started elsewhere (the worker loading `--model REPO`, `main.py download`) shows here too, from the bytes its
files have on disk. The timer refreshes it every second."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import gradio as gr

from i2v.i18n import lang_of, static_text, t, text

log = logging.getLogger(__name__)
REFRESH_S = 1.0


@dataclass
class _Job:
    thread: threading.Thread
    cancel: threading.Event
    progress: object = None          # i2v.download_progress.Progress, once the plan is known
    error: str | None = None
    lang: str = "en"


@dataclass
class _Seen:
    done: int
    at: float
    rate: float = 0.0


@dataclass
class ModelsPanel:
    jobs: dict[str, _Job] = field(default_factory=dict)
    seen: dict[str, _Seen] = field(default_factory=dict)     # bytes on disk last tick (downloads elsewhere)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- data ----------------------------------------------------------------------------------------------
    @staticmethod
    def families():
        from i2v.models import FAMILIES

        return FAMILIES

    def choices(self) -> list[tuple[str, str]]:
        return [(f"{f.title} ({f.repo_id})", f.repo_id) for f in self.families()]

    def state_text(self, repo_id: str, lang: str) -> str:
        from i2v import download_state as ds

        job = self.jobs.get(repo_id)
        if job is not None and job.thread.is_alive() and job.progress is not None:
            p = job.progress
            return text(lang, "models_state_downloading", done=f"{p.done / 1e9:.2f}", total=f"{p.total / 1e9:.2f}",
                        rate=f"{p.rate / 1e6:.1f}", eta=_eta(p.eta_s))
        if job is not None and job.thread.is_alive():
            return text(lang, "models_started", repo=repo_id)
        state = ds.state_of(repo_id)
        if state.state == ds.READY:
            return text(lang, "models_state_ready", size=f"{state.on_disk / 1e9:.2f}")
        if state.state == ds.DAMAGED:
            return text(lang, "models_state_damaged", files=", ".join(state.damaged))
        if state.state == ds.PARTIAL:
            rate = self._disk_rate(repo_id, state.done)
            total = f"{state.total / 1e9:.2f}" if state.total else "?"
            if rate > 0 or state.active:      # growing: downloaded by this app's worker or `main.py download`
                eta = (state.total - state.done) / rate if state.total and rate > 0 else None
                return text(lang, "models_state_downloading", done=f"{state.done / 1e9:.2f}", total=total,
                            rate=f"{rate / 1e6:.1f}", eta=_eta(eta))
            return text(lang, "models_state_partial", done=f"{state.done / 1e9:.2f}", total=total)
        return text(lang, "models_state_absent")

    def _disk_rate(self, repo_id: str, done: int) -> float:
        """Bytes/s the entry grew by since the last tick (a download in another process)."""
        now, last = time.monotonic(), self.seen.get(repo_id)
        seen = _Seen(done, now)
        if last is not None and now > last.at:
            seen.rate = (done - last.done) / (now - last.at) if done > last.done else 0.0
        self.seen[repo_id] = seen
        return seen.rate

    def table(self, lang: str) -> str:
        head = " | ".join(static_text(lang, k) for k in ("models_table_model", "models_table_repo", "models_table_state"))
        rows = [f"| {head} |", "|---|---|---|"]
        for f in self.families():
            rows.append(f"| {f.title} | `{f.repo_id}` | {self.state_text(f.repo_id, lang)} |")
        errors = [f"{job.error}" for job in self.jobs.values() if job.error]
        return "\n".join(rows + ([""] + errors if errors else []))

    # --- events --------------------------------------------------------------------------------------------
    def view(self, request: gr.Request):
        return self.table(lang_of(request))

    def start(self, repo_id: str | None, request: gr.Request):
        lang = lang_of(request)
        if not repo_id:
            return self.table(lang), ""
        with self.lock:
            job = self.jobs.get(repo_id)
            if job is None or not job.thread.is_alive():
                cancel = threading.Event()
                job = _Job(threading.Thread(target=self._run, args=(repo_id,), daemon=True,
                                            name=f"download {repo_id}"), cancel, lang=lang)
                self.jobs[repo_id] = job
                job.thread.start()
        return self.table(lang), text(lang, "models_started", repo=repo_id)

    def _run(self, repo_id: str) -> None:
        from i2v import downloads
        from i2v.core.errors import I2VError
        from i2v.models import family_of_repo

        job = self.jobs[repo_id]

        def seen(progress) -> None:
            job.progress = progress

        try:
            downloads.download(repo_id, family=family_of_repo(repo_id), on_progress=seen, cancel=job.cancel,
                               on_plan=lambda plan, needed: seen(downloads.Progress(
                                   repo_id, plan.total_bytes, plan.total_bytes - needed)))
        except I2VError as exc:
            job.error = exc.text(job.lang)
        except Exception as exc:  # noqa: BLE001 - network and Hub errors: shown, the download resumes later
            log.exception("download of %s failed", repo_id)
            job.error = text(job.lang, "download_failed", repo=repo_id, detail=f"{type(exc).__name__}: {exc}")

    def cancel(self, repo_id: str | None, request: gr.Request):
        lang = lang_of(request)
        job = self.jobs.get(repo_id or "")
        if job is not None and job.thread.is_alive():
            job.cancel.set()
            job.thread.join(timeout=30)
        return self.table(lang), text(lang, "download_cancelled", repo=repo_id) if job else ""

    def delete(self, repo_id: str | None, sure: bool, request: gr.Request):
        from i2v import download_state
        from i2v.core.errors import I2VError

        lang = lang_of(request)
        if not repo_id:
            return self.table(lang), "", False
        if not sure:
            return self.table(lang), text(lang, "models_confirm_delete", repo=repo_id), False
        self.cancel(repo_id, request)
        try:
            freed = download_state.delete(repo_id)
        except I2VError as exc:
            return self.table(lang), exc.text(lang), False
        self.jobs.pop(repo_id, None)
        return self.table(lang), text(lang, "models_deleted", repo=repo_id, size=f"{freed / 1e9:.2f}"), False

    def by_hand(self, request: gr.Request):
        return text(lang_of(request), "models_by_hand")

    # --- layout --------------------------------------------------------------------------------------------
    def build(self, demo) -> None:
        """The panel's components and wiring, inside the caller's Blocks (a tab of i2v.ui.layout)."""
        control = dict(queue=False, api_name=False, show_progress="hidden")
        table = gr.Markdown(elem_id="i2v-models-table")
        hint = gr.Markdown(elem_id="i2v-models-hint")
        with gr.Row(equal_height=True):
            pick = gr.Dropdown(self.choices(), value=self.choices()[0][1], label=t("models_pick"),
                               elem_id="i2v-models-pick", scale=3)
            download = gr.Button(t("models_download"), elem_id="i2v-models-download", size="sm", min_width=90)
            cancel = gr.Button(t("models_cancel"), elem_id="i2v-models-cancel", size="sm", min_width=90)
            sure = gr.Checkbox(label=t("models_sure"), value=False, elem_id="i2v-models-sure", min_width=90)
            delete = gr.Button(t("models_delete"), elem_id="i2v-models-delete", size="sm", variant="stop",
                               min_width=90)
        message = gr.Markdown(elem_id="i2v-models-message")
        timer = gr.Timer(REFRESH_S)
        timer.tick(self.view, outputs=[table], **control)
        download.click(self.start, inputs=[pick], outputs=[table, message], **control)
        cancel.click(self.cancel, inputs=[pick], outputs=[table, message], **control)
        delete.click(self.delete, inputs=[pick, sure], outputs=[table, message, sure], **control)
        demo.load(self.view, outputs=[table], **control)
        demo.load(self.by_hand, outputs=[hint], **control)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
