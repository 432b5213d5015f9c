"""Pure formatters: service data (dicts) -> the page's text and HTML, in English or Chinese.

No Gradio here: every function takes plain data and a language ('en' or 'zh') and returns a string, so the
page's words are unit-tested without a browser.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from i2v.i18n import MESSAGES, text
from i2v.core.phases import PROGRESS_PHASES as PHASES
from i2v.core.settings import RESERVED_WARNING_SHARE
from i2v.runner import FAILED, LOADING, NOT_LOADED, READY
from i2v.core.units import GIB
from i2v.core.words.plan_text import (PLAN_WORDS, mem, offload_words, plan_text,  # noqa: F401
                                      value_text)



_CLASS_NAME = re.compile(r"\b(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failure|Interrupt)\b:?\s*")


def clean_message(message) -> str:
    """A service message without raw exception class names ('failed: RuntimeError: boom' -> 'failed: boom')."""
    return _CLASS_NAME.sub("", str(message)).strip()


def gib(value) -> str:
    return "?" if value is None else f"{value / GIB:.1f} GiB"


MODEL_STATUSES = (NOT_LOADED, LOADING, READY, FAILED)      # each has a model_status_* and worker_status_* text
LOSSY_FIELDS = ("weights_dtype", "vae_tiling")


def _is_tiny(state: dict) -> bool:
    return state.get("spec") == "tiny" or (state.get("report") or {}).get("kind") == "tiny" or bool(state.get("banner"))


def status_markdown(state: dict, lang: str = "en") -> str:
    """The model line: its state in words (never the worker's English message), and the tiny-model banner."""
    status = state.get("status")
    report = state.get("report") or {}
    if status == "ready" and report:
        line = text(lang, "model_status_ready", model=report.get("model") or state.get("spec") or "?",
                    device=device_kind_text(report.get("device"), lang))
    elif status in MODEL_STATUSES:
        line = text(lang, "model_status_" + status, model=state.get("spec") or "?", device="?")
    else:
        line = text(lang, "model_status_unknown")
    lines = [line]                                 # each status line names the model already: no "Model:" prefix
    if _is_tiny(state):
        lines.insert(0, f"⚠️ **{text(lang, 'tiny_banner')}**")
    return "\n\n".join(lines)


def status_data(state: dict, lang: str = "en") -> dict:
    """The model state for the API: plain fields, the tiny banner once."""
    report = state.get("report") or {}
    return {"status": state.get("status"), "model": report.get("model") or state.get("spec"),
            "device": report.get("device"), "dtype": report.get("dtype"), "tiny": _is_tiny(state),
            "banner": text(lang, "tiny_banner") if _is_tiny(state) else None,
            "text": status_markdown(state, lang).replace("**", "").replace("⚠️ ", "")}


def device_kind_text(kind, lang: str) -> str:
    if kind in ("cuda", "cpu"):
        return text(lang, f"device_kind_{kind}")
    return str(kind or "?")


def report_markdown(state: dict, lang: str = "en") -> str:
    """What loading did: one line per optimisation and its outcome in words (details stay in logs/ and the API)."""
    report = state.get("report")
    if not report:
        return text(lang, "report_none")
    head = text(lang, "report_head", model=report.get("model", "?"), device=device_kind_text(report.get("device"), lang),
                dtype=report.get("dtype", "?"), seconds=report.get("load_seconds", "?"))
    rows = []
    for outcome in report.get("outcomes") or []:
        key = f"outcome_{outcome.get('status')}"
        word = text(lang, key) if key in MESSAGES["en"] else text(lang, "outcome_skipped")
        name = str(outcome.get("name", "?"))
        base, bracket, part = name.partition(" (")       # "gradient checkpointing (unet)": the component stays
        if f"optimisation_{base}" in MESSAGES["en"]:
            name = text(lang, f"optimisation_{base}") + (f" ({part}" if bracket else "")
        rows.append(f"- {html.escape(name)}: {word}")
    return head + "\n\n" + "\n".join(rows)


def values_text(values: dict, lang: str) -> str:
    """'Resolution (short side) 256, Frames 8, …' for a dict of slider values."""
    from i2v.i18n import EN, ZH

    labels = ZH if lang == "zh" else EN
    shown = {k: values[k] for k in ("resolution", "num_frames", "num_inference_steps", "fps", "guidance_scale")
             if k in values} or values
    return ", ".join(f"{labels.get(f'setting_{k}', k)} {v}" for k, v in shown.items())


def field_text(field: str, lang: str) -> str:
    """A field's name as the user knows it: the settings label, or the plan part's name."""
    from i2v.i18n import EN, ZH

    labels = ZH if lang == "zh" else EN
    if f"setting_{field}" in labels:
        return labels[f"setting_{field}"]
    return text(lang, f"field_{field}") if f"field_{field}" in MESSAGES["en"] else str(field)


def reason_key(adj: dict) -> str:
    """Why a setting changed, as a message id: the adjustment's own key when it has one, else by the field the
    clamp changed (a time budget changes steps, a lossy plan changes fp8/tiling, no plan fitting the size)."""
    if adj.get("reason_key"):
        return str(adj["reason_key"])
    field = adj.get("field")
    if field == "num_inference_steps":
        return "time_budget"
    if field in LOSSY_FIELDS:
        return "lossy"
    return "fit"


def adjustment_text(adj: dict, lang: str, device: str | None = "cuda") -> str:
    field = str(adj.get("field"))
    reason_id = "reason_" + reason_key(adj)
    reason = text(lang, reason_id, mem=mem(lang, device)) if reason_id in MESSAGES["en"] else ""
    return text(lang, "adjusted", field=field_text(field, lang), asked=value_text(field, adj.get("asked"), lang, device),
                got=value_text(field, adj.get("got"), lang, device), reason=reason)


def phase_text(phase, lang: str) -> str:
    return text(lang, f"phase_{phase}") if phase in PHASES else text(lang, "phase_denoise")


def progress_text(phase, lang: str) -> str:
    return text(lang, f"progress_{phase}") if phase in PHASES else str(phase)


def estimate_markdown(estimate: dict | None, lang: str, moved: tuple[float, float] | None = None) -> str:
    """What the job needs with the plan it will use, and the budget: two figures, the verdict, the plan; `moved`
    (old, new GiB): the budget changed since this page's last estimate, said as the reason a verdict changed."""
    if estimate and estimate.get("error"):
        return "⚠️ " + text(lang, "estimate_unavailable")
    if not estimate or estimate.get("peak_gib") is None:
        return text(lang, "estimate_unavailable")
    device = estimate.get("device") or "cuda"
    label_key = "label_" + str(estimate.get("label", "predicted"))
    line = text(lang, "estimate_needs", peak=float(estimate["peak_gib"]), budget=float(estimate.get("available_gib") or 0),
                label=text(lang, label_key) if label_key in MESSAGES["en"] else text(lang, "label_predicted"))
    offload = estimate.get("offload")
    if not estimate.get("fits", True):
        verdict, icon = text(lang, "estimate_no_fit"), "⚠️"
    elif offload and offload != "none":
        verdict, icon = text(lang, "estimate_offload", offload=offload_words(offload, lang, device)), "🟡"
    else:
        verdict, icon = text(lang, "estimate_fits"), "✅"
    notes = [adjustment_text(a, lang, device) for a in estimate.get("adjustments") or []]
    if estimate.get("plan"):
        notes.insert(0, text(lang, "plan_will_run", plan=plan_text(estimate["plan"], lang, device)))
    if moved:
        notes.append(text(lang, "budget_moved", old=float(moved[0]), new=float(moved[1])))
    seconds = estimate.get("seconds_estimate")
    if seconds:
        speed = text(lang, "speed_measured" if estimate.get("speed") == "measured" else "speed_estimated")
        notes.append(text(lang, "estimate_time", minutes=duration_text(seconds, lang), speed=speed))
    host = estimate.get("host_ram_gib")
    if device == "cuda" and host:                    # on a GPU the plan decides what stays in RAM: say how much
        notes.append(text(lang, "estimate_host", host=float(host)))
    full = estimate.get("full_size")
    if full and full.get("peak_gib") is not None:    # another model runs: the full-size figure, separately
        notes.append(text(lang, "estimate_model", model=(estimate.get("model") or {}).get("name", "?"),
                          family=(estimate.get("model") or {}).get("family_title", "I2VGen-XL"),
                          peak=float(full["peak_gib"]),
                          verdict=text(lang, "estimate_full_fits" if full.get("fits") else "estimate_full_no_fit")))
    return "\n\n".join([f"{icon} {line} — **{verdict}**", *[f"- {n}" for n in notes]])


def duration_text(seconds: float, lang: str = "en") -> str:
    """A time as every part of the page writes it (preset labels, estimate, progress): one formatter, its unit
    in the reader's language ('3 min', '3 分钟')."""
    seconds = float(seconds)
    if seconds < 90:
        return text(lang, "unit_seconds", n=f"{seconds:.0f}")
    return text(lang, "unit_minutes", n=f"{seconds / 60:.0f}")


def local_time(value, seconds: bool = False) -> str:
    """A stored ISO timestamp as the page shows it: local time, to the minute ('2026-12-02 14:05'), or to the
    second where it tells apart videos of one minute (History's list); anything else is shown as it is."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def device_markdown(info: dict | None, lang: str) -> str:
    if not info:
        return text(lang, "device_unavailable")
    lines = [text(lang, "device", name=info.get("name", "?"), kind=device_kind_text(info.get("kind"), lang),
                  total=gib(info.get("total_bytes")), free=gib(info.get("free_bytes")),
                  budget=gib(info.get("budget_bytes")))]
    for worker in info.get("workers") or []:       # one generator process per GPU (--gpus)
        status = worker.get("status")
        status = text(lang, f"worker_status_{status}") if status in MODEL_STATUSES else "?"
        lines.append("- " + text(lang, "worker", gpu=worker.get("gpu") or "cpu", status=status,
                                 busy=text(lang, "worker_busy") if worker.get("busy") else "",
                                 pid=worker.get("pid") or "-", restarts=worker.get("restarts", 0))
                     + (text(lang, "worker_node", host=worker["host"], node=str(worker.get("node") or "")[:8],
                             total=worker.get("total_gib", "?")) if worker.get("host") else ""))
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


def memory_html(data: dict | None, lang: str, device: str | None = "cuda") -> str:
    """Before/after bars (or one snapshot) as accessible HTML: every bar also has its number as text. Without a
    GPU there is no driver: its figure (the same RAM as "free") is not shown."""
    if not data:
        return ""
    before, after = _snapshots(data)
    snapshots = [(text(lang, "before"), "i2v-before", before),
                 (text(lang, "after" if before else "now"), "i2v-after", after)]
    snapshots = [s for s in snapshots if s[2]]
    total = max((s.get("total", 0) for _, _, s in snapshots), default=0)
    scale = total or max((v for _, _, s in snapshots for v in s.values()), default=0) or 1
    rows = []
    metrics = [m for m in dict.fromkeys(k for _, _, s in snapshots for k in s)
               if m != "total" and "metric_" + m in MESSAGES["en"]     # only figures the page can name
               and not (device != "cuda" and m == "driver_free")]
    for metric in metrics:
        for name, css, figures in snapshots:
            if metric not in figures:
                continue
            value = figures[metric]
            pct = max(0.0, min(100.0, 100.0 * value / scale))
            label = html.escape(f"{text(lang, 'metric_' + metric)} ({name})")
            rows.append(f'<span>{label}</span><div class="i2v-bar" role="img" aria-label="{label}: {gib(value)}">'
                        f'<span class="{css}" style="width:{pct:.1f}%"></span></div><span>{gib(value)}</span>')
    notes = []
    if data.get("unloaded"):
        notes.append(f"<p>✅ {html.escape(text(lang, 'unloaded'))}</p>")
    elif data.get("cleared"):
        notes.append(f"<p>✅ {html.escape(text(lang, 'cleared'))}</p>")
    if data.get("cleared") is False:
        notes.append(f"<p>⚠️ {html.escape(text(lang, 'busy_panel'))}</p>")
    if data.get("unloaded") is False:
        notes.append(f"<p>⚠️ {html.escape(text(lang, 'unload_running'))}</p>")
    latest = after or before
    reserved, whole = latest.get("reserved", 0), latest.get("total") or total
    if whole and reserved > RESERVED_WARNING_SHARE * whole:
        notes.append(f"<p>⚠️ {html.escape(text(lang, 'reserved_warning', reserved=gib(reserved), total=gib(whole), share=f'{RESERVED_WARNING_SHARE:.0%}'))}</p>")
    if total:
        notes.append(f"<p>{html.escape(text(lang, 'metric_total'))}: {gib(total)}</p>")
    return f'<div class="i2v-bars">{"".join(rows)}</div>{"".join(dict.fromkeys(notes))}'


def entry_family(entry: dict):
    """The family record that made a history entry (a sidecar without "family" predates families: I2VGen-XL);
    None when the sidecar names one this app does not know (sidecars are untrusted)."""
    from i2v.models import DEFAULT_FAMILY, by_name

    name = entry.get("family")
    if name is None:
        return DEFAULT_FAMILY
    try:
        return by_name(name) if isinstance(name, str) else None
    except KeyError:
        return None


def entry_device(entry: dict) -> str:
    """The device a history entry ran on ('cuda' or 'cpu', from its load report): its plan is told in that
    device's words (a CPU run's weights were never "in GPU memory"). Older sidecars without one: 'cuda'."""
    report = entry.get("load_report") if isinstance(entry.get("load_report"), dict) else {}
    device = report.get("device")
    return "cpu" if str(device or "cuda").startswith("cpu") else "cuda"


def history_label(entry: dict, lang: str = "en") -> str:
    params = entry.get("parameters") or {}
    if not isinstance(params, dict):
        params = {}
    prompt = str(params.get("prompt") or "").strip().replace("\n", " ")
    prompt = prompt[:40] + ("…" if len(prompt) > 40 else "")
    created = local_time(entry["created"], seconds=True) if entry.get("created") else Path(entry["video_path"]).stem
    family = entry_family(entry)
    made_by = family.title if family is not None else "?"
    return f"{created} · {made_by} · {prompt or '—'} · {text(lang, 'seed')} {entry.get('seed', '?')}"


def model_choices(models: list[dict] | None, lang: str) -> list[tuple[str, str]]:
    """The Model list: (words in lang, the name switch_model takes) for each model the service offers."""
    return [(text(lang, "model_choice_tiny" if m.get("kind") == "tiny" else "model_choice_full",
                  title=m.get("title", m["name"])), m["name"])
            for m in models or []]


def current_model(models: list[dict] | None) -> str | None:
    return next((m["name"] for m in models or [] if m.get("current")), None)


def timings_text(timings: dict | None, lang: str) -> str:
    shown = []
    for key, value in (timings or {}).items():
        if f"timing_{key}" in MESSAGES["en"] and isinstance(value, (int, float)):
            shown.append(f"{text(lang, 'timing_' + key)} {value:.1f}")
    return " · ".join(shown)


def history_markdown(entry: dict | None, lang: str) -> str:
    from i2v.i18n import EN, ZH

    if not entry:
        return text(lang, "history_empty")
    labels = ZH if lang == "zh" else EN
    params = dict(entry.get("parameters") or {})
    rows = [(labels["setting_resolution"], params.get("resolution", "?")),
            ("W×H" if lang == "en" else "宽×高", f"{params.get('width', '?')}×{params.get('height', '?')}")]
    rows += [(labels[f"setting_{k}"], params[k]) for k in ("num_frames", "fps", "num_inference_steps",
                                                          "guidance_scale") if k in params]
    seed = entry.get("seed", params.get("seed", "?"))
    prompt = html.escape(str(params.get("prompt", "")))
    negative = html.escape(str(params.get("negative_prompt", "")))
    plan = {("decode_chunk" if k == "decode_chunk_size" else k): v for k, v in params.items()
            if k in PLAN_WORDS} or entry.get("plan")
    family = entry_family(entry)
    made_by = html.escape(f"{family.title if family else '?'} ({entry.get('model') or '?'})")
    return "\n\n".join([
        f"**{html.escape(Path(entry['video_path']).name)}** · {text(lang, 'created')} {local_time(entry.get('created', '?'))} · "
        f"{labels['setting_seed']} `{seed}` · {text(lang, 'model_label')}: {made_by}",
        f"**{labels['setting_prompt']}:** {prompt or '—'}  \n**{labels['setting_negative_prompt']}:** {negative or '—'}",
        " · ".join(f"{name} **{html.escape(str(value))}**" for name, value in rows),
        *([f"{text(lang, 'history_plan')}: {plan_text(plan, lang, entry_device(entry))}"] if plan else []),
        f"{text(lang, 'timings')}: {timings_text(entry.get('timings_s'), lang) or '—'}",
    ])


CUSTOM_PRESET = "custom"    # the preset list's value once the sliders no longer hold any preset's values


def preset_choices(status: dict, lang: str) -> list[tuple[str, str]]:
    """Dropdown choices: the preset's name in lang (label_en / label_zh), its status in words, its predicted
    peak and time. The same figures as the live estimate for those settings (one computation)."""
    choices = []
    for p in status.get("presets", []):
        star = "★ " if p["name"] == status.get("recommended") else ""
        label = p.get(f"label_{lang}") or p.get("label", p["name"])
        extra = []
        key = f"preset_{p.get('status')}"
        if key in MESSAGES["en"]:
            extra.append(text(lang, key))
        if p.get("peak_gib") is not None:
            extra.append(f"{float(p['peak_gib']):.1f} GiB")
        if p.get("seconds_estimate"):
            extra.append(text(lang, "seconds", seconds=duration_text(p["seconds_estimate"], lang)))
        tail = f" — {', '.join(extra)}" if extra else ""
        rec = f" ({text(lang, 'recommended')})" if star else ""
        choices.append((f"{star}{label}{rec}{tail}", p["name"]))
    if choices:
        choices.append((text(lang, "preset_custom"), CUSTOM_PRESET))
    return choices

