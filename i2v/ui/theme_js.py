"""Dark or light page, remembered per browser: the "Dark / light" button flips Gradio's own `dark` class on
<body> (the class Gradio's themes style) and keeps the choice in localStorage, applied again at every load.
Without a stored choice Gradio's own (the system's) stays."""
from __future__ import annotations

STORAGE_KEY = "i2v-theme"
BUTTON_ID = "i2v-theme"

SCRIPT = """() => {
  const key = '%(key)s';
  const apply = (mode) => {
    if (mode === 'dark') document.body.classList.add('dark');
    else if (mode === 'light') document.body.classList.remove('dark');
  };
  apply(localStorage.getItem(key));
  requestAnimationFrame(() => apply(localStorage.getItem(key)));   // after Gradio has applied its own choice
  document.addEventListener('click', (event) => {
    if (!event.target.closest('#%(button)s')) return;
    const mode = document.body.classList.contains('dark') ? 'light' : 'dark';
    localStorage.setItem(key, mode);
    apply(mode);
  });
}""" % {"key": STORAGE_KEY, "button": BUTTON_ID}
