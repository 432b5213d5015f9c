"""Pure formatters: service data (dicts) -> the page's text and HTML, in English or Chinese.

No Gradio here: every function takes plain data and a language ('en' or 'zh') and returns a string, so the
page's words are unit-tested without a browser.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from i2v.i18n import MESSAGES, text
from i2v.core.units import GIB



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
