"""Gradio Blocks UI. Handlers only translate between widgets and the service; layout first, wiring at the bottom.

Public API endpoints: generate, cancel, model_status, server_info, memory, clear_cache, unload, history.
Static text is translated in the browser (gr.I18n, see i2v/i18n.py); handler messages follow Accept-Language.
"""
import html
import logging
import os
import re
import sys
import threading
from pathlib import Path

import gradio as gr

from i2v import video
from i2v.core.settings import SETTINGS_BY_NAME, Setting
from i2v.image_input import header_size
from i2v.i18n import I18N, MESSAGES, lang_of, t, text
from i2v.runner import GenerationCancelled
from i2v.service import PHASE_LABELS as PHASE_NAMES
from i2v.service import BusyError, GenerationFailed, GenerationService, ProgressUpdate, RequestError

log = logging.getLogger(__name__)

QUEUE_MAX_SIZE = 8
STATUS_REFRESH_S = 2.0
TITLE = "i2v — image to video (I2VGen-XL)"
GIB = 2**30
PRESET_FIELDS = ("resolution", "num_frames", "fps", "num_inference_steps", "guidance_scale")
CSS = """
#i2v-notice:empty, #i2v-notice .prose:empty { display: none; }
.i2v-bars { display: grid; grid-template-columns: max-content 1fr max-content; gap: 4px 8px; align-items: center;
            font-size: 0.85em; }
.i2v-bar { height: 12px; border-radius: 3px; background: var(--neutral-200, #e5e7eb); overflow: hidden; }
.i2v-bar > span { display: block; height: 100%; }
.i2v-before { background: #f59e0b; } .i2v-after { background: #10b981; }
"""


class I2VBlocks(gr.Blocks):
    """Blocks whose launch() defaults to this UI's translations and CSS (callers may still pass their own)."""

    def launch(self, *args, **kwargs):
        for key, value in launch_kwargs().items():
            kwargs.setdefault(key, value)
        return super().launch(*args, **kwargs)


def launch_kwargs() -> dict:
    """Extra keyword arguments for demo.launch(): the English/Chinese translations and the UI's CSS."""
    return {"i18n": I18N, "css": CSS}


# --- formatting (pure functions, unit-tested) ------------------------------------------------------------
_CLASS_NAME = re.compile(r"\b(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failure|Interrupt)\b:?\s*")


def clean_message(message) -> str:
    """A service message without raw exception class names ('failed: RuntimeError: boom' -> 'failed: boom')."""
    return _CLASS_NAME.sub("", str(message)).strip()


def gib(value) -> str:
    return "?" if value is None else f"{value / GIB:.1f} GiB"


def plain(key: str) -> str:
    """Both languages in one string, for the few components whose label Gradio does not translate (gr.Video)."""
    from i2v.i18n import EN, ZH

    return f"{EN[key]} · {ZH[key]}"


def session_of(request) -> str | None:
    """Who a call comes from: the browser tab's or API client's session (Gradio's session hash)."""
    return getattr(request, "session_hash", None) if request is not None else None


def _raw_image(payload):
    """The uploaded file's path (or data: URL) untouched: decoding and every check happen in i2v.image_input,
    so a broken file gets our message naming the field instead of the component's generic error."""
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):
        return payload.url
    return payload.path


def _raw_value(payload):
    """The value as sent (text, NaN, out of range…): the settings table validates it and names the field."""
    return payload


def raw_input(component, preprocess=_raw_value):
    """The component with Gradio's input conversion replaced by ours (on this instance: a subclass would make
    Gradio write a .pyi file into our source folder)."""
    component.preprocess = preprocess
    return component


def _slider(setting: Setting, **kwargs) -> gr.Slider:
    return raw_input(gr.Slider(minimum=setting.minimum, maximum=setting.maximum, step=setting.step,
                               value=setting.default, label=t(f"setting_{setting.name}"),
                               info=t(f"setting_{setting.name}_help"), **kwargs))


def _textbox(setting: Setting, lines: int) -> gr.Textbox:
    return gr.Textbox(value=setting.default, label=t(f"setting_{setting.name}"),
                      info=t(f"setting_{setting.name}_help"), lines=lines, elem_id=f"i2v-{setting.name}")


def status_markdown(state: dict) -> str:
    lines = [f"**Model:** {state['status']} — {clean_message(state['message'] or state['spec'])}"]
    if state.get("banner"):
        lines.insert(0, f"⚠️ **{clean_message(state['banner'])}**")
    return "\n\n".join(lines)


def report_markdown(state: dict) -> str:
    report = state.get("report")
    if not report:
        return "The load report appears once the model is loaded."
    rows = ["| optimisation | outcome | detail |", "|---|---|---|"]
    rows += [f"| {o['name']} | {o['status']} | {o['detail']} |" for o in report["outcomes"]]
    return f"Loaded `{report['model']}` on **{report['device']}** as {report['dtype']} in {report['load_seconds']} s\n\n" + "\n".join(rows)


def values_text(values: dict, lang: str) -> str:
    """'Resolution (short side) 256, Frames 8, …' for a dict of slider values."""
    from i2v.i18n import EN, ZH

    labels = ZH if lang == "zh" else EN
    shown = {k: values[k] for k in ("resolution", "num_frames", "num_inference_steps", "fps", "guidance_scale")
             if k in values} or values
    return ", ".join(f"{labels.get(f'setting_{k}', k)} {v}" for k, v in shown.items())


def adjustment_text(adj: dict, lang: str) -> str:
    from i2v.i18n import EN, ZH

    labels = ZH if lang == "zh" else EN
    field = labels.get(f"setting_{adj.get('field')}", adj.get("field"))
    return text(lang, "adjusted", field=field, asked=adj.get("asked"), got=adj.get("got"), reason=adj.get("reason", ""))


def plan_text(plan: dict | None, lang: str) -> str:
    """The plan in plain words: 'weights streamed from RAM layer by layer; the two guidance halves …'."""
    if not plan:
        return ""
    parts = [text(lang, f"plan_offload_{plan.get('offload', 'none')}")]
    if plan.get("cfg_split"):
        parts.append(text(lang, "plan_cfg_split"))
    if plan.get("chunk_tokens"):
        parts.append(text(lang, "plan_chunks", tokens=plan["chunk_tokens"]))
    if plan.get("weights_dtype") == "fp8":
        parts.append(text(lang, "plan_fp8"))
    if plan.get("vae_tiling"):
        parts.append(text(lang, "plan_tiling"))
    return ("；" if lang == "zh" else "; ").join(parts)


def estimate_markdown(estimate: dict | None, lang: str) -> str:
    if estimate and estimate.get("error"):
        return f"⚠️ {estimate['error']}"
    if not estimate or estimate.get("peak_gib") is None:
        return text(lang, "estimate_unavailable")
    line = text(lang, "estimate", peak=float(estimate["peak_gib"]), available=float(estimate.get("available_gib") or 0),
                label=text(lang, "label_" + estimate.get("label", "predicted"))
                if "label_" + estimate.get("label", "predicted") in MESSAGES["en"] else estimate.get("label"))
    offload = estimate.get("offload")
    if not estimate.get("fits", True):
        verdict, icon = text(lang, "estimate_no_fit"), "⚠️"
    elif offload and offload != "none":
        verdict, icon = text(lang, "estimate_offload", offload=text(lang, f"plan_offload_{offload}")), "🟡"
    else:
        verdict, icon = text(lang, "estimate_fits"), "✅"
    notes = [adjustment_text(a, lang) for a in estimate.get("adjustments") or []]
    if estimate.get("plan"):
        notes.insert(0, text(lang, "plan_will_run", plan=plan_text(estimate["plan"], lang)))
    seconds = estimate.get("seconds_estimate")
    if seconds:
        notes.append(text(lang, "estimate_time", minutes=duration_text(seconds), speed=estimate.get("speed", "")))
    return "\n\n".join([f"{icon} {line} — **{verdict}**", *[f"- {n}" for n in notes]])


def duration_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def device_markdown(info: dict | None, lang: str) -> str:
    if not info:
        return text(lang, "device_unavailable")
    lines = [text(lang, "device", name=info.get("name", "?"), kind=info.get("kind", "?"),
                  total=gib(info.get("total_bytes")), free=gib(info.get("free_bytes")),
                  budget=gib(info.get("budget_bytes")))]
    for worker in info.get("workers") or []:       # one generator process per GPU (--gpus)
        lines.append("- " + text(lang, "worker", gpu=worker.get("gpu") or "cpu", status=worker.get("status", "?"),
                                 busy=text(lang, "worker_busy") if worker.get("busy") else "",
                                 pid=worker.get("pid") or "-", restarts=worker.get("restarts", 0)))
    return "\n".join(lines)


def _figures(data) -> dict[str, float]:
    """Byte figures of one memory snapshot: {'allocated': bytes, ...} from keys like allocated_bytes / reserved_gib."""
    out = {}
    for key, value in (data or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key.endswith("_gib"):
            out[key[:-4]] = float(value) * GIB
        elif key.endswith("_bytes"):
            out[key[:-6]] = float(value)
    return out


def _snapshots(data: dict) -> tuple[dict, dict]:
    """(before, after) byte figures from the service's answers: flat figures (memory), before/after dicts
    (unload), or paired keys like free_before_bytes / free_after_bytes next to an 'after' dict (clear_cache)."""
    flat = _figures(data)
    paired_before = {k[:-7]: v for k, v in flat.items() if k.endswith("_before")}
    paired_after = {k[:-6]: v for k, v in flat.items() if k.endswith("_after")}
    if paired_before or paired_after:
        total = _figures(data.get("after") if isinstance(data.get("after"), dict) else {}).get("total")
        if total:
            paired_after["total"] = total
        return paired_before, paired_after
    if isinstance(data.get("before"), dict) or isinstance(data.get("after"), dict):
        return _figures(data.get("before")), _figures(data.get("after"))
    return {}, flat


def memory_html(data: dict | None, lang: str) -> str:
    """Before/after bars (or one snapshot) as accessible HTML: every bar also has its number as text."""
    if not data:
        return ""
    before, after = _snapshots(data)
    snapshots = [(text(lang, "before"), "i2v-before", before),
                 (text(lang, "after" if before else "now"), "i2v-after", after)]
    snapshots = [s for s in snapshots if s[2]]
    total = max((s.get("total", 0) for _, _, s in snapshots), default=0)
    scale = total or max((v for _, _, s in snapshots for v in s.values()), default=0) or 1
    rows = []
    metrics = [m for m in dict.fromkeys(k for _, _, s in snapshots for k in s) if m != "total"]
    for metric in metrics:
        for name, css, figures in snapshots:
            if metric not in figures:
                continue
            value = figures[metric]
            pct = max(0.0, min(100.0, 100.0 * value / scale))
            label = html.escape(f"{text(lang, 'metric_' + metric) if 'metric_' + metric in MESSAGES['en'] else metric.replace('_', ' ')} ({name})")
            rows.append(f'<span>{label}</span><div class="i2v-bar" role="img" aria-label="{label}: {gib(value)}">'
                        f'<span class="{css}" style="width:{pct:.1f}%"></span></div><span>{gib(value)}</span>')
    notes = []
    if data.get("unloaded"):
        notes.append(f"<p>✅ {html.escape(text(lang, 'unloaded'))}</p>")
    elif data.get("cleared"):
        notes.append(f"<p>✅ {html.escape(text(lang, 'cleared'))}</p>")
    for source in (data, data.get("after") if isinstance(data.get("after"), dict) else {}):
        for key in ("message", "warning"):
            if source.get(key):
                notes.append(f"<p>⚠️ {html.escape(str(source[key]))}</p>")
    if total:
        notes.append(f"<p>{html.escape(text(lang, 'metric_total'))}: {gib(total)}</p>")
    return f'<div class="i2v-bars">{"".join(rows)}</div>{"".join(dict.fromkeys(notes))}'


def history_label(entry: dict) -> str:
    params = entry.get("parameters") or {}
    prompt = str(params.get("prompt") or "").strip().replace("\n", " ")
    prompt = prompt[:40] + ("…" if len(prompt) > 40 else "")
    created = entry.get("created") or Path(entry["video_path"]).stem
    return f"{created} · {prompt or '—'} · seed {entry.get('seed', '?')}"


def history_markdown(entry: dict | None, lang: str) -> str:
    from i2v.i18n import EN, ZH

    if not entry:
        return text(lang, "history_empty")
    labels = ZH if lang == "zh" else EN
    params = dict(entry.get("parameters") or {})
    columns = [(re.split(r" \(|（", labels["setting_resolution"])[0], params.pop("resolution", "?")),
               ("W×H", f"{params.pop('width', '?')}×{params.pop('height', '?')}")]
    columns += [(labels[f"setting_{k}"], params.pop(k)) for k in ("num_frames", "fps", "num_inference_steps",
                                                                 "guidance_scale") if k in params]
    seed = entry.get("seed", params.pop("seed", "?"))
    params.pop("seed", None)
    prompt = html.escape(str(params.pop("prompt", "")))
    negative = html.escape(str(params.pop("negative_prompt", "")))
    table = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "---|" * len(columns),
             "| " + " | ".join(html.escape(str(c[1])) for c in columns) + " |"]
    knobs = " · ".join(f"{html.escape(str(k))} `{html.escape(str(v)).replace('`', '')}`" for k, v in params.items())
    timings = " · ".join(f"{k} {v}" for k, v in (entry.get("timings_s") or {}).items())
    return "\n\n".join([
        f"**{Path(entry['video_path']).name}** · {text(lang, 'created')} {entry.get('created', '?')} · "
        f"{labels['setting_seed']} `{seed}`",
        f"**{labels['setting_prompt']}:** {prompt or '—'}  \n**{labels['setting_negative_prompt']}:** {negative or '—'}",
        "\n".join(table),
        *([knobs] if knobs else []),
        f"{text(lang, 'timings')}: {timings or '—'}",
    ])


def delete_output(outputs_dir: Path, path: str | Path) -> list[Path]:
    """Delete an output and its sidecar (i2v.history: inside outputs/ only)."""
    from i2v import history

    return history.delete_output(outputs_dir, path)


# --- service calls that tolerate an older service (methods still being added) ---------------------------
def _panel_call(service, name: str, *args):
    """Call a service method for a side panel; a failure is logged and shows as 'no data', never breaks the page."""
    try:
        return getattr(service, name)(*args)
    except Exception:  # noqa: BLE001 - a panel must never break the page
        log.exception("%s failed", name)
        return None


def presets_status(service, image_size) -> dict:
    data = _panel_call(service, "presets_status", image_size)
    if data is not None:
        return data
    from i2v import configs

    try:
        presets = configs.load_presets()
    except Exception:  # noqa: BLE001
        log.exception("cannot read presets")
        return {"recommended": None, "presets": []}
    return {"recommended": None, "presets": [
        {"name": p.name, "label": f"{p.name} · {p.label}", "status": None, "values": p.values()} for p in presets]}


def preset_choices(status: dict, lang: str) -> list[tuple[str, str]]:
    choices = []
    for p in status.get("presets", []):
        star = "★ " if p["name"] == status.get("recommended") else ""
        extra = [s for s in (p.get("status_label") or p.get("status"),) if s]
        if p.get("peak_gib") is not None:
            extra.append(f"{float(p['peak_gib']):.1f} GiB")
        if p.get("seconds_estimate"):
            extra.append(text(lang, "seconds", seconds=_duration(p["seconds_estimate"])))
        tail = f" — {', '.join(extra)}" if extra else ""
        rec = f" ({text(lang, 'recommended')})" if star else ""
        choices.append((f"{star}{p.get('label', p['name'])}{rec}{tail}", p["name"]))
    return choices


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def build_ui(service: GenerationService) -> gr.Blocks:
    S = SETTINGS_BY_NAME
    outcomes: dict[str, dict] = {}      # session -> what the last generate produced (read by the .then step)
    outcomes_lock = threading.Lock()

    def _record(request, outcome: dict) -> None:
        key = getattr(request, "session_hash", None) or "api"
        with outcomes_lock:
            outcomes[key] = outcome

    # --- handlers ----------------------------------------------------------------------------------------
    def generate(image, prompt, negative_prompt, resolution, num_frames, fps, num_inference_steps,
                 guidance_scale, seed, request: gr.Request, progress=gr.Progress()):
        """Generate a video from an image and a prompt; returns the MP4 and a JSON info object."""
        lang = lang_of(request)

        def report(update: ProgressUpdate) -> None:
            if update.total:   # steps and chunks: Gradio shows "i/total unit" and an ETA
                progress((update.index, update.total), desc=PHASE_NAMES.get(update.phase, update.phase), unit=update.unit)
            else:
                progress(update.fraction, desc=update.label)

        values = dict(prompt=prompt, negative_prompt=negative_prompt, resolution=resolution, num_frames=num_frames,
                      fps=fps, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed)
        _record(request, {})
        try:
            result = service.generate(image, values, progress=report, owner=session_of(request))
        except (RequestError, BusyError) as exc:
            message = exc.text(lang)
            _record(request, {"error": message})
            raise gr.Error(message, print_exception=False) from None
        except GenerationCancelled as exc:
            message = text(lang, "stopped") + (f" ({clean_message(exc)})" if str(exc) else "")
            _record(request, {"error": message})
            raise gr.Error(message, print_exception=False) from None
        except GenerationFailed as exc:
            suggestion = getattr(exc, "suggestion", None)
            if suggestion is not None or type(exc).__name__ == "OutOfMemoryFailure":
                report_ = getattr(exc, "report", None) or {}
                phase = report_.get("phase") or "?"
                message = text(lang, "oom", phase=PHASE_NAMES.get(phase, phase) if lang == "en" else phase,
                               attempts=len(report_.get("attempts") or []) or 1)
                message += " " + (text(lang, "oom_suggest", values=values_text(suggestion, lang)) if suggestion
                                  else text(lang, "oom_no_suggestion"))
                _record(request, {"error": message, "suggestion": suggestion or None})
                raise gr.Error(message, print_exception=False) from None
            _record(request, {"error": clean_message(exc)})
            raise gr.Error(clean_message(exc), print_exception=False) from None
        except Exception:  # noqa: BLE001 - never a traceback on the page
            log.exception("unexpected error in generate")
            _record(request, {"error": text(lang, "unexpected")})
            raise gr.Error(text(lang, "unexpected"), print_exception=False) from None
        info = result.info()
        notes = [adjustment_text(a, lang) for a in info.get("adjustments") or []]
        if info.get("plan"):
            gr.Info(text(lang, "plan_ran", plan=plan_text(info["plan"], lang)))
        for note in result.input_notes:
            gr.Info(note.text(lang))
        if info.get("fallbacks"):
            notes.append(text(lang, "fallbacks", attempts=info.get("attempts"),
                              fallbacks=", ".join(map(str, info["fallbacks"]))))
        for note in notes:
            gr.Warning(note)
        _record(request, {"notes": notes})
        return str(result.video_path), info

    def after_generate(request: gr.Request):
        """Show what the last generate left: notices, an OOM suggestion (+ its button), and the new history."""
        key = getattr(request, "session_hash", None) or "api"
        with outcomes_lock:
            outcome = outcomes.pop(key, {})
        lines = [f"- ⚠️ {n}" for n in outcome.get("notes", [])]
        if outcome.get("error"):
            lines.insert(0, f"**{outcome['error']}**")
        suggestion = outcome.get("suggestion")
        return ("\n".join(lines), gr.update(visible=bool(suggestion)), suggestion or {}, *history_choices())

    def use_suggestion(suggestion: dict):
        return [gr.update(value=suggestion[f]) if f in (suggestion or {}) else gr.update() for f in PRESET_FIELDS]

    def cancel(request: gr.Request) -> str:
        """Stop this browser session's (or API client's) running generation at its next step; others' jobs
        are not touched."""
        lang = lang_of(request)
        return text(lang, "stopping") if service.cancel(owner=session_of(request)) else text(lang, "nothing_running")

    def server_info() -> dict:
        """What the web server process itself holds: it must never initialise CUDA or load weights."""
        torch = sys.modules.get("torch")
        return {
            "pid": os.getpid(),
            "torch_imported": torch is not None,
            "cuda_initialized": bool(torch is not None and torch.cuda.is_initialized()),
            "diffusers_imported": "diffusers" in sys.modules,
            "workers": service.workers(),
        }

    def model_status() -> tuple[str, str]:
        state = service.model_state()
        return status_markdown(state), report_markdown(state)

    def on_load(request: gr.Request):
        """Page load: device panel, presets with the recommended one preselected (its values fill the sliders)."""
        lang = lang_of(request)
        status = presets_status(service, None)
        choices = preset_choices(status, lang)
        chosen = status.get("recommended")
        fills = [gr.update()] * len(PRESET_FIELDS)
        if chosen:
            preset = next(p for p in status["presets"] if p["name"] == chosen)
            fills = [gr.update(value=preset["values"][f]) if f in preset["values"] else gr.update()
                     for f in PRESET_FIELDS]
        notice = "" if chosen or not status.get("presets") or status["presets"][0].get("status") is None \
            else text(lang, "no_preset_fits")
        return (device_markdown(_panel_call(service, "device_info"), lang), memory_html(memory(), lang),
                gr.update(choices=choices, value=chosen), *fills, notice, *history_choices())

    def on_image(image, preset_name, request: gr.Request):
        """A new image changes the aspect ratio, hence memory: refresh the presets' status."""
        lang = lang_of(request)
        status = presets_status(service, header_size(image))
        return gr.update(choices=preset_choices(status, lang), value=preset_name)

    def on_preset(preset_name, image):
        if not preset_name:
            return [gr.update()] * len(PRESET_FIELDS)
        status = presets_status(service, header_size(image))
        preset = next((p for p in status.get("presets", []) if p["name"] == preset_name), None)
        values = (preset or {}).get("values", {})
        return [gr.update(value=values[f]) if f in values else gr.update() for f in PRESET_FIELDS]

    def on_estimate(image, resolution, num_frames, fps, num_inference_steps, guidance_scale, request: gr.Request):
        values = dict(resolution=resolution, num_frames=num_frames, fps=fps,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
        size = header_size(image)
        return estimate_markdown(_panel_call(service, "estimate", values, size), lang_of(request))

    def memory() -> dict:
        """Memory figures of the GPU (or RAM on CPU): allocated, reserved, driver-used, total."""
        return _panel_call(service, "memory") or {}

    def clear_cache() -> dict:
        """Free cached GPU memory; returns the figures before and after."""
        return _panel_call(service, "clear_cache") or {}

    def unload() -> dict:
        """Unload the model and clear the cache; returns the figures before and after."""
        return _panel_call(service, "unload") or {}

    def render_memory(data: dict, request: gr.Request):
        lang = lang_of(request)
        return memory_html(data, lang), device_markdown(_panel_call(service, "device_info"), lang)

    def history() -> list[dict]:
        """Past outputs, newest first: video_path, parameters, seed, timings_s (from the sidecars)."""
        return service.history()

    def history_choices():
        entries = service.history()
        return (gr.update(choices=[(history_label(e), e["video_path"]) for e in entries],
                          value=entries[0]["video_path"] if entries else None),)

    def _entry(path):
        return next((e for e in service.history() if e["video_path"] == path), None)

    def on_history_pick(path, request: gr.Request):
        entry = _entry(path) if path else None
        hide = gr.update(visible=False)
        return (history_markdown(entry, lang_of(request)), entry["video_path"] if entry else None, hide)

    def reuse(path, request: gr.Request):
        entry = _entry(path) if path else None
        if not entry:
            gr.Warning(text(lang_of(request), "history_pick_first"))
            return [gr.update()] * 9
        params = entry.get("parameters") or {}
        fields = ("prompt", "negative_prompt", *PRESET_FIELDS)
        valid = {f: params[f] for f in fields if f in params and S[f].check(params[f]) is None}   # sidecars are untrusted
        updates = [gr.update(value=valid[f]) if f in valid else gr.update() for f in fields]
        seed = entry.get("seed", -1)
        seed = seed if S["seed"].check(seed) is None else -1
        return [*updates, gr.update(value=seed), gr.Tabs(selected="generate")]

    def ask_delete(path, request: gr.Request):
        lang = lang_of(request)
        if not path:
            return gr.update(visible=False), text(lang, "history_pick_first")
        return gr.update(visible=True), text(lang, "confirm_question", name=Path(path).name)

    def confirm_delete(path, request: gr.Request):
        lang = lang_of(request)
        name = Path(path or "?").name
        try:
            removed = delete_output(service.outputs_dir, path or "")
            message = text(lang, "deleted", name=name) if removed else text(lang, "missing", name=name)
        except ValueError:
            log.warning("refused to delete %r", path)
            message = text(lang, "refused", name=name)
        return (gr.update(visible=False), message, *history_choices())

    # --- layout ------------------------------------------------------------------------------------------
    with I2VBlocks(title=TITLE) as demo:
        gr.Markdown(t("title"))
        gr.Markdown(t("subtitle"))
        status = gr.Markdown(status_markdown(service.model_state()))
        with gr.Tabs() as tabs:
            with gr.Tab(t("tab_generate"), id="generate"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4):
                        image = raw_input(gr.Image(label=t("input_image"), type="filepath",
                                                   sources=["upload", "clipboard"], elem_id="i2v-image", height=300),
                                          _raw_image)
                        prompt = _textbox(S["prompt"], lines=2)
                        negative_prompt = _textbox(S["negative_prompt"], lines=2)
                        preset = gr.Dropdown(choices=[], value=None, label=t("preset"), info=t("preset_info"),
                                             elem_id="i2v-preset")
                        with gr.Row():
                            generate_button = gr.Button(t("generate"), variant="primary", elem_id="i2v-generate")
                            stop_button = gr.Button(t("stop"), variant="stop", elem_id="i2v-stop")
                        stop_message = gr.Markdown(elem_id="i2v-stop-message")
                        with gr.Accordion(t("advanced"), open=False, elem_id="i2v-advanced"):
                            resolution = raw_input(gr.Dropdown(choices=list(S["resolution"].choices),
                                                     value=S["resolution"].default, label=t("setting_resolution"),
                                                     info=t("setting_resolution_help"), elem_id="i2v-resolution"))
                            num_frames = _slider(S["num_frames"], elem_id="i2v-frames")
                            fps = _slider(S["fps"], elem_id="i2v-fps")
                            steps = _slider(S["num_inference_steps"], elem_id="i2v-steps")
                            guidance = _slider(S["guidance_scale"], elem_id="i2v-guidance")
                            seed = raw_input(gr.Number(value=S["seed"].default, label=t("setting_seed"),
                                                       info=t("setting_seed_help"), precision=0, elem_id="i2v-seed"))
                    with gr.Column(scale=4):
                        video_out = gr.Video(label=plain("video"), autoplay=True, loop=True, elem_id="i2v-video")
                        notice = gr.Markdown(elem_id="i2v-notice")
                        use_button = gr.Button(t("use_settings"), visible=False, elem_id="i2v-use-settings")
                        suggestion = gr.State({})
                        info = gr.JSON(label=t("info"), elem_id="i2v-info", max_height=360)
                        with gr.Accordion(t("load_report"), open=False):
                            report = gr.Markdown(report_markdown(service.model_state()))
                    with gr.Column(scale=3, elem_id="i2v-device-panel"):
                        gr.Markdown(t("device_panel"))
                        device = gr.Markdown(elem_id="i2v-device")
                        estimate = gr.Markdown(elem_id="i2v-estimate", label=t("estimate"))
                        with gr.Row():
                            clear_button = gr.Button(t("clear_cache"), size="sm", min_width=90, elem_id="i2v-clear-cache")
                            unload_button = gr.Button(t("unload"), size="sm", min_width=90, elem_id="i2v-unload")
                            refresh_button = gr.Button(t("refresh"), size="sm", min_width=60,
                                                       elem_id="i2v-refresh-memory")
                        memory_bars = gr.HTML(label=t("memory_figures"), elem_id="i2v-memory")
                        memory_json = gr.JSON(visible=False)
            with gr.Tab(t("tab_history"), id="history"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        history_pick = gr.Dropdown(choices=[], label=t("history_pick"), elem_id="i2v-history")
                        history_details = gr.Markdown(elem_id="i2v-history-details")
                        with gr.Row():
                            reuse_button = gr.Button(t("reuse"), elem_id="i2v-reuse")
                            delete_button = gr.Button(t("delete"), variant="stop", elem_id="i2v-delete")
                        history_message = gr.Markdown(elem_id="i2v-history-message")
                        with gr.Row(visible=False) as confirm_row:
                            confirm_button = gr.Button(t("confirm_delete"), variant="stop", elem_id="i2v-confirm-delete")
                            keep_button = gr.Button(t("cancel_delete"), elem_id="i2v-keep")
                    with gr.Column(scale=5):
                        history_video = gr.Video(label=plain("history_preview"), elem_id="i2v-history-video")

        # --- wiring ------------------------------------------------------------------------------------------
        light = dict(concurrency_limit=None, show_progress="hidden")
        sliders = [resolution, num_frames, fps, steps, guidance]
        inputs = [image, prompt, negative_prompt, resolution, num_frames, fps, steps, guidance, seed]
        generating = generate_button.click(generate, inputs=inputs, outputs=[video_out, info], api_name="generate")
        # Gradio 6 runs .then() only after a success; .failure() covers errors (stop, OOM, bad input).
        after = dict(fn=after_generate, outputs=[notice, use_button, suggestion, history_pick], api_name=False, **light)
        generating.then(**after)
        generating.failure(**after)
        control = dict(queue=False)       # never waits in, or is refused by, the job queue
        stop_button.click(cancel, outputs=[stop_message], api_name="cancel", **control)
        use_button.click(use_suggestion, inputs=[suggestion], outputs=sliders, api_name=False, **light)
        timer = gr.Timer(STATUS_REFRESH_S)
        timer.tick(model_status, outputs=[status, report], api_name=False, show_progress="hidden")
        demo.load(model_status, outputs=[status, report], api_name="model_status", **control)
        demo.load(on_load, outputs=[device, memory_bars, preset, *sliders, notice, history_pick], api_name=False,
                  **light)

        image.change(on_image, inputs=[image, preset], outputs=[preset], api_name=False, **light)
        preset.input(on_preset, inputs=[preset, image], outputs=sliders, api_name=False, **light)
        estimate_inputs = [image, *sliders]
        for component in estimate_inputs:
            component.change(on_estimate, inputs=estimate_inputs, outputs=[estimate], api_name=False,
                             trigger_mode="always_last", **light)
        demo.load(on_estimate, inputs=estimate_inputs, outputs=[estimate], api_name=False, **light)

        clear_button.click(clear_cache, outputs=[memory_json], api_name="clear_cache", **control).then(
            render_memory, inputs=[memory_json], outputs=[memory_bars, device], api_name=False, **light)
        unload_button.click(unload, outputs=[memory_json], api_name="unload", **control).then(
            render_memory, inputs=[memory_json], outputs=[memory_bars, device], api_name=False, **light)
        refresh_button.click(memory, outputs=[memory_json], api_name="memory", **control).then(
            render_memory, inputs=[memory_json], outputs=[memory_bars, device], api_name=False, **light)

        history_pick.change(on_history_pick, inputs=[history_pick],
                            outputs=[history_details, history_video, confirm_row], api_name=False, **light)
        reuse_button.click(reuse, inputs=[history_pick],
                           outputs=[prompt, negative_prompt, *sliders, seed, tabs], api_name=False, **light)
        delete_button.click(ask_delete, inputs=[history_pick], outputs=[confirm_row, history_message],
                            api_name=False, **light)
        keep_button.click(lambda: (gr.update(visible=False), ""), outputs=[confirm_row, history_message],
                          api_name=False, **light)
        confirm_button.click(confirm_delete, inputs=[history_pick],
                             outputs=[confirm_row, history_message, history_pick], api_name=False, **light)

        api_out = gr.JSON(visible=False)
        gr.Button(visible=False).click(server_info, outputs=[api_out], api_name="server_info", **control)
        gr.Button(visible=False).click(history, outputs=[api_out], api_name="history")
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    return demo
