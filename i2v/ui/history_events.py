"""The History tab's events: the list and thumbnails, details, Reuse (settings back on the Generate tab),
exports (GIF, PNG frames) and deleting one or several outputs."""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from i2v import video
from i2v.core.settings import SETTINGS
from i2v.core.settings import SETTINGS_BY_NAME as S
from i2v.i18n import lang_of, text
from i2v.ui.format import entry_family, history_label, history_markdown
from i2v.ui.model_events import running_family, service_models
from i2v.ui.output_files import delete_output

log = logging.getLogger(__name__)


class HistoryEvents:
    """Mixed into Handlers: needs self.service (history(), outputs_dir)."""

    def history(self) -> list[dict]:
        """Past outputs, newest first: video_path, parameters, seed, timings_s (from the sidecars)."""
        return self.service.history()

    def history_choices(self, lang: str = "en"):
        """The History tab's list (newest chosen), its gallery of first-frame thumbnails, and the boxes to tick
        for deleting several."""
        entries = self.service.history()
        return (gr.update(choices=[(history_label(e, lang), e["video_path"]) for e in entries],
                          value=entries[0]["video_path"] if entries else None),
                gr.update(value=self._thumbnails(entries, lang)),
                gr.update(choices=[(history_label(e, lang), e["video_path"]) for e in entries], value=[]))

    @staticmethod
    def _thumbnails(entries: list[dict], lang: str) -> list[tuple[str, str]]:
        from i2v import exports

        shown = []
        for entry in entries:      # history.list_outputs offers only our own files; thumbnail() makes sure again
            try:
                shown.append((str(exports.thumbnail(Path(entry["video_path"]))), history_label(entry, lang)))
            except (OSError, RuntimeError, StopIteration, ValueError):   # an unreadable video: no picture
                log.warning("no thumbnail for %s", entry["video_path"], exc_info=True)
        return shown

    def on_gallery_select(self, evt: gr.SelectData):
        """A click on a thumbnail chooses that video in the list (and so its details, preview and buttons)."""
        caption = (evt.value or {}).get("caption") if isinstance(evt.value, dict) else None
        entries = self.service.history()
        chosen = next((e for e in entries if history_label(e, "en") == caption or history_label(e, "zh") == caption),
                      entries[evt.index] if isinstance(evt.index, int) and evt.index < len(entries) else None)
        return chosen["video_path"] if chosen else gr.update()

    def _entry(self, path):
        return next((e for e in self.service.history() if e["video_path"] == path), None)

    def on_history_pick(self, path, request: gr.Request):
        entry = self._entry(path) if path else None
        hide = gr.update(visible=False)
        return (history_markdown(entry, lang_of(request)), entry["video_path"] if entry else None, hide)

    def reuse(self, path, request: gr.Request):
        """History's Reuse: the input image and every setting of that video back on the Generate tab, the seed
        that made it included (the notice says so; the Random seed button beside it makes a new one)."""
        entry = self._entry(path) if path else None
        lang = lang_of(request)
        if not entry:
            return [*[gr.update()] * (1 + len(SETTINGS)), text(lang, "history_pick_first"), gr.update()]
        family, made_by = running_family(self.service), entry_family(entry)
        if made_by is not family:       # its values belong to another model: nothing applied, the user told
            models = service_models(self.service)
            kind = "tiny" if (entry.get("load_report") or {}).get("kind") == "tiny" else "full"
            same = [m for m in models if made_by is not None and m.get("family") == made_by.name]
            choice = next((m for m in same if m.get("kind") == kind), same[0] if same else None)
            notice = text(lang, "reuse_other_family", title=made_by.title if made_by else "?",
                          model=str(entry.get("model") or "?")[:80], running=family.title,
                          choice=choice["name"] if choice else (made_by.name if made_by else "?"))
            return [*[gr.update()] * (1 + len(SETTINGS)), notice, gr.Tabs(selected="generate")]
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            params = {}
        valid = {s.name: params[s.name] for s in family.rules.settings()     # the family's own ranges
                 if s.name in params and s.check(params[s.name]) is None and family.rules.check_frames(
                     params[s.name] if s.name == "num_frames" else None) is None}   # sidecars are untrusted
        seed = entry.get("seed")       # the seed that made it (A1111's Reuse): Generate repeats the video
        valid["seed"] = seed if S["seed"].check(seed) is None else S["seed"].default
        updates = [gr.update(value=valid[s.name]) if s.name in valid else gr.update() for s in SETTINGS]
        notice = text(lang, "reused", seed=seed) if S["seed"].check(seed) is None else text(lang, "reused_no_seed")
        image = gr.update(value=entry["input_image"]) if entry.get("input_image") else gr.update()
        return [image, *updates, notice, gr.Tabs(selected="generate")]

    def reuse_dropped(self, upload, request: gr.Request):
        """A video of ours (or its .json sidecar) dropped on the page: its settings back, as Reuse does. Only the
        file's name is used: the video of that name in outputs/ and the sidecar beside it (the dropped copy is
        never read, and nothing outside outputs/ is)."""
        name = Path(str(upload or "")).name
        entry = next((e for e in self.service.history()
                      if name and name in (Path(e["video_path"]).name, video.sidecar_path(Path(e["video_path"])).name)),
                     None)
        if entry is None:
            return [*[gr.update()] * (1 + len(SETTINGS)), text(lang_of(request), "dropped_unknown", name=name[:80]),
                    gr.update()]
        return self.reuse(entry["video_path"], request)

    def export_gif(self, path, request: gr.Request):
        """The chosen video as an animated GIF (made once, kept beside the MP4, deleted with it)."""
        return self._export(path, "gif", lang_of(request))

    def export_frames(self, path, request: gr.Request):
        """The chosen video's frames as PNG files in one zip."""
        return self._export(path, "frames", lang_of(request))

    def _export(self, path, kind: str, lang: str):
        from i2v import exports, history

        if not path:
            return None, text(lang, "history_pick_first")
        try:
            made = exports.export(history.resolve_output(self.service.outputs_dir, path), kind)
        except ValueError:                 # not an MP4 in outputs/: nothing is read or written
            log.warning("refused to export %r", path)
            return None, text(lang, "refused", name=Path(str(path)).name)
        except OSError:
            log.exception("export failed")
            return None, text(lang, "export_failed")
        return str(made), text(lang, "exported", name=made.name)

    def ask_delete(self, path, selected, request: gr.Request):
        """Delete asks first: the ticked videos when any are ticked, else the chosen one."""
        lang = lang_of(request)
        targets = list(selected or []) or ([path] if path else [])
        if not targets:
            return gr.update(visible=False), text(lang, "history_pick_first")
        if len(targets) > 1:
            return gr.update(visible=True), text(lang, "confirm_many", count=len(targets))
        return gr.update(visible=True), text(lang, "confirm_question", name=Path(targets[0]).name)

    def confirm_delete(self, path, selected, request: gr.Request):
        lang = lang_of(request)
        messages = []
        for target in list(selected or []) or [path]:
            name = Path(target or "?").name
            try:
                removed = delete_output(self.service.outputs_dir, target or "")
                messages.append(text(lang, "deleted", name=name) if removed else text(lang, "missing", name=name))
            except ValueError:
                log.warning("refused to delete %r", target)
                messages.append(text(lang, "refused", name=name))
        return (gr.update(visible=False), " ".join(messages), *self.history_choices(lang))
