"""The page's job signals in the browser: progress next to Generate and in the tab title, a notification and a
sound when a job ends, "done" in the title until the page is seen.

Gradio draws a job's progress over the video (`show_progress_on`), off screen with Advanced open or on a phone;
this script mirrors that tracker's figures into a small bar under Generate (`#i2v-progress`) and into the tab
title ("42% · i2v"), polling four times a second (Gradio has no progress event for page scripts). Its words come
from the catalogue (both languages; the browser's language picks, as Accept-Language does for the handlers).
"""
from __future__ import annotations

import json

from i2v.core.words import page

POLL_MS = 250
SHORT_TITLE = "i2v"
KEYS = ("title_done", "title_failed", "notify_body")

PROGRESS_HTML = ('<div class="i2v-mini" hidden><div class="i2v-bar"><span class="i2v-after" style="width:0%">'
                 '</span></div><span class="i2v-mini-text" aria-live="polite"></span></div>')

CSS = """
#i2v-progress { min-height: 0; padding: 0; }
#i2v-progress .i2v-mini { display: grid; grid-template-columns: 1fr; gap: 2px; font-size: 0.85em; }
#i2v-progress .i2v-mini[hidden] { display: none; }
#i2v-progress .i2v-bar > span { transition: width 0.2s; }
"""


def words_json() -> str:
    """{'en': {...}, 'zh': {...}} of the words the script says."""
    return json.dumps({"en": {k: page.EN[k] for k in KEYS}, "zh": {k: page.ZH[k] for k in KEYS}},
                      ensure_ascii=False)


SIGNALS_JS = """() => {
  const WORDS = %(words)s;
  const w = WORDS[(navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en'];
  const SHORT = %(short)s;
  const state = window.i2vSignals = {running: false, base: null, unseen: false, notified: 0, sounded: 0, ended: 0};
  const shown = (el) => el && el.offsetParent !== null;
  const ticked = (id) => { const box = document.querySelector(`#${id} input`); return !!(box && box.checked); };
  const restore = () => { if (state.unseen) { state.unseen = false; document.title = state.base; } };
  const seen = () => !document.hidden && document.hasFocus();
  document.addEventListener('visibilitychange', () => { if (!document.hidden) restore(); });
  window.addEventListener('focus', restore);
  document.addEventListener('change', (event) => {    // ask for the permission once, when the box is ticked
    if (event.target.closest && event.target.closest('#i2v-notify') && event.target.checked
        && window.Notification && Notification.permission === 'default') { Notification.requestPermission(); }
  });
  const beep = () => {
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator(), gain = audio.createGain();
      tone.frequency.value = 880; gain.gain.value = 0.1; tone.connect(gain); gain.connect(audio.destination);
      tone.start(); tone.stop(audio.currentTime + 0.25); state.sounded += 1;
    } catch (e) { /* no audio device: the notification and the title still say it */ }
  };
  const ended = () => {
    state.ended += 1;
    const failed = !!document.querySelector('.toast-body.error');
    const word = failed ? w.title_failed : w.title_done;
    if (ticked('i2v-notify') && window.Notification && Notification.permission === 'granted') {
      try { new Notification(`${word} · ${SHORT}`, {body: w.notify_body}); state.notified += 1; } catch (e) {}
    }
    if (ticked('i2v-sound')) beep();
    if (seen()) { document.title = state.base; } else { state.unseen = true; document.title = `${word} · ${SHORT}`; }
  };
  setInterval(() => {
    const tracker = document.querySelector('#i2v-video');
    const mini = document.querySelector('#i2v-progress .i2v-mini');
    if (!tracker || !mini) return;
    const meta = [...tracker.querySelectorAll('.progress-text, .meta-text, .meta-text-center, .progress-level-inner')]
      .filter(shown);
    const running = meta.length > 0;
    if (!running && !state.running && !state.unseen) state.base = document.title;   // idle: another script's title
    if (running) {
      if (!state.running) restore();
      const bar = tracker.querySelector('.progress-bar');
      const width = bar ? parseFloat(bar.style.width) : NaN;
      const pct = Number.isFinite(width) ? Math.max(0, Math.min(100, Math.round(width))) : null;
      const words = meta.map((el) => el.innerText.trim()).filter((t) => t).join(' · ');
      mini.hidden = false;
      mini.querySelector('span.i2v-after').style.width = `${pct ?? 0}%%`;
      mini.querySelector('.i2v-mini-text').innerText = (pct === null ? '' : `${pct}%% · `) + words;
      document.title = pct === null ? `… · ${SHORT}` : `${pct}%% · ${SHORT}`;
    } else if (state.running) {
      mini.hidden = true;
      ended();
    }
    state.running = running;
  }, %(poll)d);
}""" % {"words": words_json(), "short": json.dumps(SHORT_TITLE), "poll": POLL_MS}


def page_js(*scripts: str) -> str:
    """One function for Gradio's js= that runs each script (a function's source) in turn."""
    return "() => {\n" + "\n".join(f"  ({script})();" for script in (*scripts, SIGNALS_JS)) + "\n}"
