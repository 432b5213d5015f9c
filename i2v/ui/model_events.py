"""The page's model events: the Model list, switching models, the model line and load report, and every settings
widget following the running family's rows."""
from __future__ import annotations

import logging
import time

import gradio as gr

from i2v.core.errors import BusyError, RequestError
from i2v.i18n import lang_of, text
from i2v.ui.event_helpers import choice_list, error, session_of
from i2v.ui.format import current_model, model_choices, report_markdown, status_data, status_markdown

log = logging.getLogger(__name__)

MODEL_NOTE_S = 20.0       # how long a model switch's outcome stays under the model line (the timer redraws it)


def running_family(service):
    """The family of the model that runs (the advisor's)."""
    return service.advisor.family()


def service_models(service) -> list[dict]:
    """The Model list's entries."""
    return service.models()


def family_rows(family, lang: str) -> list:
    """One update per settings row (table order) giving its widget the family's default, range and choices;
    text rows and the seed keep what the user typed."""
    updates = []
    for setting in family.rules.settings():
        if setting.choices:
            updates.append(gr.update(choices=choice_list(setting, lang), value=setting.default))
        elif setting.kind is str or setting.name == "seed":
            updates.append(gr.update())
        else:
            updates.append(gr.update(value=setting.default, minimum=setting.minimum, maximum=setting.maximum,
                                     step=setting.step))
    return updates


class ModelEvents:
    """Mixed into Handlers: needs self.service, self.waiting_jobs and self._model_notes."""

    def model_status(self, request: gr.Request) -> tuple[str, str]:
        """The model line and the load report as the page shows them (Markdown, in the caller's language)."""
        lang = lang_of(request)
        state = self.service.model_state()
        return self._with_note(status_markdown(state, lang), request), report_markdown(state, lang)

    def _with_note(self, status: str, request) -> str:
        note, at = self._model_notes.get(session_of(request), ("", 0.0))
        return f"{status}\n\n{note}" if note and time.monotonic() - at < MODEL_NOTE_S else status

    def models(self) -> list[dict]:
        """The models this app can switch to: name, title, family, kind (tiny/full), current."""
        return service_models(self.service)

    def model_picker(self, lang: str = "en"):
        models = service_models(self.service)
        return gr.update(choices=model_choices(models, lang), value=current_model(models))

    def on_family(self, request: gr.Request):
        """Page load and after a switch: the Model list, and every settings widget with the running family's
        rows (defaults, ranges, choices)."""
        lang = lang_of(request)
        return (self.model_picker(lang), *family_rows(running_family(self.service), lang))

    def _switch(self, spec) -> dict:
        if self.waiting_jobs():
            raise RequestError("model_busy", field="model")
        return self.service.switch_model(spec)

    def switch_model(self, spec, request: gr.Request) -> dict:
        """Switch the model (API): a name from `models`, a tiny variant, a repo id or a folder; the new status.
        Refused while a job runs or waits, or for a model this app does not know; the message names "model"."""
        lang = lang_of(request)
        try:
            done = self._switch(spec)
        except (RequestError, BusyError) as exc:
            raise error(lang, exc.text(lang)) from None
        except Exception:  # noqa: BLE001 - never a traceback
            log.exception("switch_model failed")
            raise error(lang, text(lang, "unexpected")) from None
        return {**{k: v for k, v in done.items() if k != "state"}, **status_data(done["state"], lang)}

    def switch_model_page(self, spec, request: gr.Request):
        """The page's Model list: switch, and say so (or why not) in the status area."""
        lang = lang_of(request)
        try:
            done = self._switch(spec)
            note = "✅ " + text(lang, "model_switched", title=done["family_title"], model=done["model"])
        except (RequestError, BusyError) as exc:
            note = "⚠️ " + text(lang, "model_switch_failed", error=exc.text(lang))
        except Exception:  # noqa: BLE001 - never a traceback
            log.exception("switch_model failed")
            note = "⚠️ " + text(lang, "model_switch_failed", error=text(lang, "unexpected"))
        self._model_notes[session_of(request)] = (note, time.monotonic())
        status, report = self.model_status(request)
        return status, report

    def status(self, request: gr.Request) -> dict:
        """The model's state as data for API clients: status, model, device, dtype, tiny, banner (once), text."""
        return status_data(self.service.model_state(), lang_of(request))
