"""The page: Blocks layout first, then the wiring of events to `Handlers` at the bottom.

Public API endpoints: generate, cancel, model_status, status, server_info, memory, clear_cache, unload, history,
queue, cancel_job, models, switch_model.
Static text is translated in the browser (gr.I18n, see i2v/i18n.py); handler messages follow Accept-Language.
"""
from __future__ import annotations

import gradio as gr

from i2v.core.settings import MAX_BATCH, SETTINGS, Setting
from i2v.i18n import i18n_table, t
from i2v.ui.format import current_model, model_choices, report_markdown, status_markdown
from i2v.ui.handlers import PRESET_FIELDS, Handlers, choice_list, service_models
from i2v.ui.job_queue import limit_waiting_jobs, waiting, waiting_upload_paths
from i2v.ui.uploads import Uploads
from i2v.ui.models_panel import ModelsPanel
from i2v.ui.queue_panel import QueuePanel
from i2v.ui.preview_view import PreviewView
from i2v.ui import lang_js, outputs_folder, page_js, persist, theme_js

QUEUE_MAX_SIZE = 8
STATUS_REFRESH_S = 2.0
TITLE = "i2v — image to video (I2VGen-XL)"
CSS = """
.i2v-hidden { display: none !important; }
#i2v-notice:empty, #i2v-notice .prose:empty { display: none; }
.i2v-bars { display: grid; grid-template-columns: max-content 1fr max-content; gap: 4px 8px; align-items: center;
            font-size: 0.85em; }
.i2v-bar { height: 12px; border-radius: 3px; background: var(--neutral-200, #e5e7eb); overflow: hidden; }
.i2v-bar > span { display: block; height: 100%; }
.i2v-before { background: #f59e0b; } .i2v-after { background: #10b981; }
@media (max-width: 640px) {   /* a phone: the form, then Generate, on the first screen */
  #i2v-subtitle { display: none; }
  #i2v-status { font-size: 0.85em; }
}
"""


class I2VBlocks(gr.Blocks):
    """Blocks whose launch() defaults to this UI's translations and CSS (callers may still pass their own)."""

    def launch(self, *args, **kwargs):
        for key, value in launch_kwargs().items():
            kwargs.setdefault(key, value)
        return super().launch(*args, **kwargs)


# Ctrl+Enter (⌘+Enter on a Mac) presses Generate from anywhere on the page, as in other image/video UIs
SHORTCUTS_JS = """() => {
  document.addEventListener('keydown', (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
      const button = document.querySelector('#i2v-generate');
      if (button) { event.preventDefault(); button.click(); }
    }
  });
}"""


def launch_kwargs() -> dict:
    """Extra keyword arguments for demo.launch(): the English/Chinese translations, the UI's CSS, shortcuts."""
    return {"i18n": i18n_table(), "css": CSS + page_js.CSS, "js": page_js.page_js(SHORTCUTS_JS, lang_js.script(),
                                                                                 theme_js.SCRIPT)}


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


# The page's element ids of settings rows (tests and users' scripts find the widgets by them); others i2v-<name>.
ELEM_IDS = {"num_frames": "i2v-frames", "num_inference_steps": "i2v-steps", "guidance_scale": "i2v-guidance"}
# A range wider than this is typed as a number (the seed), not a slider nobody could aim with.
SLIDER_SPAN_MAX = 10_000


def setting_widget(setting: Setting, **kwargs):
    """The page's input for one row of the settings table: a text box, a radio (choices with words) or drop-down
    (plain choices), a slider, or a number box for a huge range; labels and help from the same row."""
    common = dict(label=t(f"setting_{setting.name}"), info=t(f"setting_{setting.name}_help"),
                  elem_id=ELEM_IDS.get(setting.name, f"i2v-{setting.name}"), **kwargs)
    if setting.choices:
        # English words at build time; the user's language fills them in on page load (Handlers.on_load)
        kind = gr.Radio if setting.choice_labels else gr.Dropdown
        return raw_input(kind(choices=choice_list(setting, "en"), value=setting.default, **common))
    if setting.kind is str:      # raw: an object sent as text is refused by the table, never str()-ed
        return raw_input(gr.Textbox(value=setting.default, lines=2, **common))
    if setting.maximum - setting.minimum > SLIDER_SPAN_MAX:
        return raw_input(gr.Number(value=setting.default, precision=0 if setting.kind is int else None, **common))
    # no precision=0 on sliders: Gradio would round 2.5 unseen instead of our message naming the field
    return raw_input(gr.Slider(minimum=setting.minimum, maximum=setting.maximum, step=setting.step,
                               value=setting.default, **common))


def api_widget(setting: Setting):
    """The API's typed parameter for one settings row (hidden): whole numbers as int, choices as their list,
    named after the row; values still reach the settings table raw, which names the field."""
    common = dict(value=setting.default, label=setting.name, visible=False)
    if setting.choices:
        return raw_input(gr.Dropdown(choices=list(setting.choices), **common))
    if setting.kind is str:
        return raw_input(gr.Textbox(**common))
    return raw_input(gr.Number(precision=0 if setting.kind is int else None, **common))


def build_ui(service, may_cancel_others: bool = False) -> gr.Blocks:
    """The page over a service. may_cancel_others: the queue panel lets anyone cancel any job (an app on the
    loopback without a login has one user, the person at this computer)."""
    h = Handlers(service)
    live = PreviewView(service)             # the running job's live preview and its setting
    q = QueuePanel(service, may_cancel_others)
    widgets: dict[str, gr.components.Component] = {}   # one per settings row, in table order

    # --- layout ------------------------------------------------------------------------------------------
    with I2VBlocks(title=TITLE) as demo:
        gr.Markdown(t("title"))
        gpu = h.gpu_present()          # without a GPU no label speaks of GPU memory
        gr.Markdown(t("subtitle" if gpu else "subtitle_cpu"), elem_id="i2v-subtitle")
        status = gr.Markdown(status_markdown(service.model_state()), label="model_state", show_label=False,
                             elem_id="i2v-status")
        with gr.Tabs() as tabs:
            with gr.Tab(t("tab_generate"), id="generate"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4):
                        image = raw_input(gr.Image(label=t("input_image"), type="filepath",
                                                   sources=["upload", "clipboard"], elem_id="i2v-image", height=260),
                                          _raw_image)
                        widgets["prompt"] = setting_widget(SETTINGS[0])
                        # Generate right under the prompt: on a phone it is on the first screen
                        with gr.Row():
                            generate_button = gr.Button(t("generate"), variant="primary", elem_id="i2v-generate")
                            stop_button = gr.Button(t("stop"), variant="stop", elem_id="i2v-stop")
                        stop_message = gr.Markdown(label="message", show_label=False, elem_id="i2v-stop-message")
                        # the job's progress under Generate (page_js mirrors the video's tracker), its end signals
                        gr.HTML(page_js.PROGRESS_HTML, elem_id="i2v-progress", padding=False)
                        with gr.Row():
                            gr.Checkbox(value=False, label=t("notify_done"), elem_id="i2v-notify", container=False)
                            gr.Checkbox(value=False, label=t("sound_done"), elem_id="i2v-sound", container=False)
                        # the model under Generate: on a phone Generate stays on the first screen
                        models = service_models(service)
                        model_pick = gr.Dropdown(choices=model_choices(models, "en"), value=current_model(models),
                                                 label=t("model_pick"), info=t("model_pick_info"),
                                                 elem_id="i2v-model", visible=bool(models))   # words follow the language
                        with gr.Accordion(t("queue_title"), open=False, elem_id="i2v-queue-box"):
                            queue_text = gr.Markdown(elem_id="i2v-queue")
                            with gr.Row(equal_height=True):
                                queue_pick = gr.Dropdown(choices=[], value=None, label=t("queue_pick"), scale=3,
                                                         elem_id="i2v-queue-pick")
                                queue_cancel = gr.Button(t("queue_cancel"), size="sm", scale=1, min_width=90,
                                                         elem_id="i2v-queue-cancel")
                            with gr.Row(visible=False) as queue_confirm_row:
                                gr.Markdown(t("queue_confirm"))
                                queue_yes = gr.Button(t("queue_confirm_yes"), variant="stop", size="sm",
                                                      elem_id="i2v-queue-confirm")
                                queue_keep = gr.Button(t("queue_keep"), size="sm", elem_id="i2v-queue-keep")
                            queue_message = gr.Markdown(label="message", show_label=False,
                                                        elem_id="i2v-queue-message")
                        preset = gr.Dropdown(choices=[], value=None, label=t("preset"), info=t("preset_info"),
                                             elem_id="i2v-preset")
                        reset_button = gr.Button(t("reset_settings"), size="sm", elem_id="i2v-reset")
                        gr.Button(t("theme_toggle"), size="sm", elem_id=theme_js.BUTTON_ID)   # page JS only
                        memory = persist.browser_state(service.outputs_dir)   # this browser's settings (localStorage)
                        dropped = gr.File(label=t("drop_settings"), file_types=[".mp4", ".json"], type="filepath",
                                          height=90, elem_id="i2v-drop-settings")   # like PNG Info
                        with gr.Accordion(t("advanced"), open=False, elem_id="i2v-advanced"):
                            for setting in SETTINGS[1:]:       # every other row of the settings table, in order
                                if setting.name == "seed":     # the seed with its 🎲 / ♻ buttons beside it
                                    with gr.Row(equal_height=True):
                                        widgets["seed"] = setting_widget(setting, scale=3)
                                        random_seed_button = gr.Button(t("seed_random"), size="sm", scale=1,
                                                                       min_width=90, elem_id="i2v-seed-random")
                                        reuse_seed_button = gr.Button(t("seed_reuse"), size="sm", scale=1,
                                                                      min_width=90, elem_id="i2v-seed-reuse")
                                else:
                                    widgets[setting.name] = setting_widget(setting)
                            batch = raw_input(gr.Slider(minimum=1, maximum=MAX_BATCH, step=1, value=1,
                                                        label=t("batch"), info=t("batch_help"), elem_id="i2v-batch"))
                            live.setting()
                    with gr.Column(scale=4):
                        live.image()       # above the video, where the job's progress shows
                        video_out = gr.Video(label="result_video", show_label=False, autoplay=True, loop=True,
                                             elem_id="i2v-video")   # gr.Video shows no I18n label: none shown
                        used_seed = gr.Markdown(elem_id="i2v-used-seed")
                        notice = gr.Markdown(elem_id="i2v-notice")
                        use_button = gr.Button(t("use_settings"), visible=False, elem_id="i2v-use-settings")
                        suggestion = gr.State({})
                        with gr.Accordion(t("details"), open=False, elem_id="i2v-details"):   # raw JSON: folded
                            gr.Markdown(t("info"), elem_id="i2v-info-title")   # the JSON's label names the API output
                            info = gr.JSON(label="info", show_label=False, elem_id="i2v-info", max_height=360)
                        with gr.Accordion(t("load_report"), open=False):
                            report = gr.Markdown(report_markdown(service.model_state()), label="load_report", show_label=False)
                    with gr.Column(scale=3, elem_id="i2v-device-panel"):
                        gr.Markdown(t("device_panel" if gpu else "device_panel_cpu"))
                        device = gr.Markdown(elem_id="i2v-device")
                        estimate = gr.Markdown(elem_id="i2v-estimate", label=t("estimate" if gpu else "estimate_cpu"))
                        with gr.Row():
                            clear_button = gr.Button(t("clear_cache" if gpu else "clear_cache_cpu"), size="sm", min_width=90, elem_id="i2v-clear-cache")
                            unload_button = gr.Button(t("unload"), size="sm", min_width=90, elem_id="i2v-unload")
                            refresh_button = gr.Button(t("refresh"), size="sm", min_width=60,
                                                       elem_id="i2v-refresh-memory")
                        memory_bars = gr.HTML(label=t("memory_figures"), elem_id="i2v-memory")
                        memory_json = gr.JSON(visible=False, label="memory")   # named for the API
            with gr.Tab(t("tab_history"), id="history"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        gallery = gr.Gallery(label="history", show_label=False, columns=4, height=260,
                                             allow_preview=False, elem_id="i2v-gallery")
                        history_pick = gr.Dropdown(choices=[], label=t("history_pick"), elem_id="i2v-history")
                        with gr.Accordion(t("delete_many"), open=False, elem_id="i2v-delete-many-box"):
                            ticked = gr.CheckboxGroup(choices=[], label=t("delete_many_pick"),
                                                      elem_id="i2v-delete-many")
                        history_details = gr.Markdown(elem_id="i2v-history-details")
                        with gr.Row():
                            reuse_button = gr.Button(t("reuse"), elem_id="i2v-reuse")
                            delete_button = gr.Button(t("delete"), variant="stop", elem_id="i2v-delete")
                        with gr.Row():
                            gif_button = gr.Button(t("export_gif"), size="sm", elem_id="i2v-export-gif")
                            frames_button = gr.Button(t("export_frames"), size="sm", elem_id="i2v-export-frames")
                        export_file = gr.File(label="export", show_label=False, interactive=False,
                                              elem_id="i2v-export")
                        history_message = gr.Markdown(elem_id="i2v-history-message")
                        with gr.Row(equal_height=True):      # where the videos are, how many, their size
                            folder_line = gr.Markdown(t("outputs_folder") + f": `{service.outputs_dir}`",
                                                      elem_id="i2v-folder")
                            open_folder_button = gr.Button(t("open_folder"), size="sm", scale=0, min_width=120,
                                                           visible=may_cancel_others, elem_id="i2v-open-folder")
                        with gr.Row(visible=False) as confirm_row:
                            confirm_button = gr.Button(t("confirm_delete"), variant="stop", elem_id="i2v-confirm-delete")
                            keep_button = gr.Button(t("cancel_delete"), elem_id="i2v-keep")
                    with gr.Column(scale=5):
                        history_video = gr.Video(label="preview", show_label=False, elem_id="i2v-history-video")

            with gr.Tab(t("models_panel"), id="models"):     # weights: state, download, cancel, delete
                ModelsPanel().build(demo)

        # --- wiring ------------------------------------------------------------------------------------------
        light = dict(concurrency_limit=None, show_progress="hidden")
        one_estimate = dict(concurrency_id="estimate", concurrency_limit=1, show_progress="hidden")
        sliders = [widgets[name] for name in PRESET_FIELDS]        # what a preset fills
        choosers = [widgets[s.name] for s in SETTINGS if s.choice_labels]   # their words follow the language
        seed = widgets["seed"]
        inputs = [image, *(widgets[s.name] for s in SETTINGS)]           # the settings table's order
        api_inputs = [image, *(api_widget(s) for s in SETTINGS)]
        # The page's Generate first clears the last run's notices, then queues the job; API clients call
        # /generate (a hidden twin). Both share one concurrency group: one job at a time, whoever sends it.
        one_job = dict(concurrency_id="generate", concurrency_limit=1, show_progress_on=[video_out])
        generating = generate_button.click(
            h.clear_notices, outputs=[notice, stop_message, use_button, used_seed], api_name=False,
            queue=False, show_progress="hidden").then(
            h.generate_page, inputs=[*inputs, batch], outputs=[video_out, info], api_name=False, **one_job)
        # the API's outputs keep their names ("video", "status"): hidden twins, since on the page those labels are
        # Gradio's own i18n namespaces and its translator warns in the browser console
        api_video = gr.Video(visible=False, label="video")
        gr.Button(visible=False).click(h.generate, inputs=api_inputs, outputs=[api_video, info], api_name="generate",
                                       **one_job)
        # Gradio 6 runs .then() only after a success; .failure() covers errors (OOM, bad input).
        after = dict(fn=h.after_generate, outputs=[notice, use_button, suggestion, used_seed, history_pick, gallery,
                                                        ticked, stop_message, video_out],
                     api_name=False, **light)
        generating.then(**after)
        generating.failure(**after)
        live.wire(demo, generate_button, generating)
        random_seed_button.click(h.random_seed, outputs=[seed], api_name=False, **light)
        reuse_seed_button.click(h.reuse_seed, inputs=[info], outputs=[seed], api_name=False, **light)
        control = dict(queue=False)       # never waits in, or is refused by, the job queue
        # Stop: a running job of this tab ends at its next step; a job of this tab still waiting in the queue
        # leaves it (a new token value triggers Gradio's cancel, which touches this session's events only)
        leave_queue = gr.Textbox(elem_id="i2v-leave-queue", elem_classes=["i2v-hidden"], container=False,
                                 show_label=False, interactive=False)
        stop_button.click(h.cancel, outputs=[stop_message], api_name="cancel", **control).then(
            h.leave_queue, outputs=[leave_queue, stop_message], api_name=False, show_progress="hidden", **control)
        leave_queue.change(fn=None, cancels=[generating], api_name=False)
        use_button.click(h.use_suggestion, inputs=[suggestion], outputs=sliders, api_name=False, **light)
        timer = gr.Timer(STATUS_REFRESH_S)
        timer.tick(h.model_status, outputs=[status, report], api_name=False, show_progress="hidden")
        timer.tick(q.view, inputs=[queue_pick], outputs=[queue_text, queue_pick, generate_button], api_name=False, **control,
                   show_progress="hidden")
        queue_cancel.click(q.ask_cancel, inputs=[queue_pick], outputs=[queue_confirm_row, queue_message],
                           api_name=False, **control)
        queue_yes.click(q.confirm_cancel, inputs=[queue_pick], outputs=[queue_confirm_row, queue_message],
                        api_name=False, **control)
        queue_keep.click(lambda: gr.update(visible=False), outputs=[queue_confirm_row], api_name=False, **control)
        demo.load(h.model_status, outputs=[status, report], api_name=False, **control)
        api_status = [gr.Markdown(visible=False, label="status"), gr.Markdown(visible=False, label="load_report")]
        gr.Button(visible=False).click(h.model_status, outputs=api_status, api_name="model_status", **control)
        # the running family's rows first (defaults, ranges, choices), then the presets fill what they name
        family_outputs = [model_pick, *(widgets[s.name] for s in SETTINGS)]
        load_outputs = [device, memory_bars, preset, *sliders, notice, history_pick, gallery, ticked, *choosers]
        # ... then what this browser remembers (persist) over them
        setting_widgets = [widgets[s.name] for s in SETTINGS]
        recall = dict(fn=lambda stored: persist.restore(stored, persist.preset_names(service)), inputs=[memory],
                      outputs=[*setting_widgets, preset], api_name=False, **light)
        demo.load(h.on_family, outputs=family_outputs, api_name=False, **light).then(
            h.on_load, outputs=load_outputs, api_name=False, **light).then(**recall).then(
            h.on_estimate, inputs=[image, *sliders], outputs=[estimate], api_name=False, **one_estimate)
        # the user's own changes are remembered (never the values the page fills in while loading)
        keep = dict(fn=persist.remember, inputs=[*setting_widgets, preset], outputs=[memory], api_name=False,
                    trigger_mode="always_last", **light)
        text_boxes = [widgets[s.name] for s in SETTINGS if s.kind is str and not s.choices]   # prompt, negative
        # (a slider's own change is kept after the preset box has said Custom: one write, below)
        gr.on([w.input for w in setting_widgets if w not in sliders] + [w.blur for w in text_boxes]
              + [preset.input], **keep)
        reset_button.click(persist.forget, outputs=[memory, *setting_widgets], api_name=False, **light).then(
            h.on_family, outputs=family_outputs, api_name=False, **light).then(
            h.on_load, outputs=load_outputs, api_name=False, **light)
        # the Model list: switch (outside the job queue, refused while a job runs or waits), then every row,
        # the presets, the device and memory panels follow the new family
        model_pick.input(h.switch_model_page, inputs=[model_pick], outputs=[status, report], api_name=False,
                         show_progress="minimal", show_progress_on=[status], **control).then(
            h.on_family, outputs=family_outputs, api_name=False, **light).then(
            h.on_load, outputs=load_outputs, api_name=False, **light).then(
            h.on_estimate, inputs=[image, *sliders], outputs=[estimate], api_name=False, **one_estimate)

        image.change(h.on_image, inputs=[image, preset], outputs=[preset], api_name=False, **light)
        preset.input(h.on_preset, inputs=[preset, image], outputs=sliders, api_name=False, **light).then(**keep)
        for slider in sliders:      # the user's own change (not a preset filling them) makes the preset "Custom"
            slider.input(h.on_sliders, inputs=[preset, image, *sliders], outputs=[preset], api_name=False,
                         trigger_mode="always_last", **light).then(**keep)     # "Custom" remembered too
        # One listener for every input of the estimate, its runs one at a time and a burst collapsed into one
        # last run: a preset filling five sliders can never leave the answer for half-filled values on screen.
        estimate_inputs = [image, *sliders]
        gr.on([component.change for component in estimate_inputs], h.on_estimate, inputs=estimate_inputs,
              outputs=[estimate], api_name=False, trigger_mode="always_last", **one_estimate)

        clear_button.click(h.clear_cache, outputs=[memory_json], api_name="clear_cache", **control).then(
            h.render_memory, inputs=[memory_json], outputs=[memory_bars, device], api_name=False, **light)
        unload_button.click(h.unload, outputs=[memory_json], api_name="unload", **control).then(
            h.render_memory, inputs=[memory_json], outputs=[memory_bars, device], api_name=False, **light)
        refresh_button.click(h.memory, outputs=[memory_json], api_name="memory", **control).then(
            h.render_memory, inputs=[memory_json], outputs=[memory_bars, device], api_name=False, **light)

        history_pick.change(h.on_history_pick, inputs=[history_pick],
                            outputs=[history_details, history_video, confirm_row], api_name=False, **light)
        reuse_button.click(h.reuse, inputs=[history_pick],
                           outputs=[image, *inputs[1:], notice, tabs], api_name=False,
                           **light)
        dropped.upload(h.reuse_dropped, inputs=[dropped], outputs=[image, *inputs[1:], notice, tabs], api_name=False,
                       **light)
        delete_button.click(h.ask_delete, inputs=[history_pick, ticked], outputs=[confirm_row, history_message],
                            api_name=False, **light)
        keep_button.click(lambda: (gr.update(visible=False), ""), outputs=[confirm_row, history_message],
                          api_name=False, **light)
        gif_button.click(h.export_gif, inputs=[history_pick], outputs=[export_file, history_message],
                         api_name=False, **light)
        frames_button.click(h.export_frames, inputs=[history_pick], outputs=[export_file, history_message],
                            api_name=False, **light)
        confirm_button.click(h.confirm_delete, inputs=[history_pick, ticked],
                             outputs=[confirm_row, history_message, history_pick, gallery, ticked], api_name=False,
                             **light)
        gallery.select(h.on_gallery_select, outputs=[history_pick], api_name=False, **light)
        # the outputs folder's line (videos, size) at load, after a run and after a delete; open it (loopback)
        folder_text, open_folder = outputs_folder.handlers(service.outputs_dir)
        folder = dict(fn=folder_text, outputs=[folder_line], api_name=False, **light)
        demo.load(**folder)
        generating.then(**folder)
        generating.failure(**folder)
        confirm_button.click(**folder)
        open_folder_button.click(open_folder, outputs=[history_message], api_name=False, **light)

        api_out = gr.JSON(visible=False, label="result")
        gr.Button(visible=False).click(h.server_info, outputs=[api_out], api_name="server_info", **control)
        gr.Button(visible=False).click(h.history, outputs=[api_out], api_name="history")
        gr.Button(visible=False).click(h.status, outputs=[api_out], api_name="status", **control)
        gr.Button(visible=False).click(q.data, outputs=[api_out], api_name="queue", **control)
        gr.Button(visible=False).click(h.models, outputs=[api_out], api_name="models", **control)
        model_spec = gr.Textbox(visible=False, label="spec")
        gr.Button(visible=False).click(h.switch_model, inputs=[model_spec], outputs=[api_out], api_name="switch_model",
                                       **control)
        job_key = gr.Textbox(visible=False, label="key")
        gr.Button(visible=False).click(q.cancel_key, inputs=[job_key], outputs=[queue_message],
                                       api_name="cancel_job", **control)
        demo.unload(h.on_unload)
        demo.unload(q.forget)
    q.demo = demo
    h.uploads = Uploads(waiting_paths=lambda: waiting_upload_paths(demo._queue))
    h.waiting_jobs = lambda: len(waiting(demo._queue))
    demo.queue(default_concurrency_limit=1)
    limit_waiting_jobs(demo, QUEUE_MAX_SIZE)     # only generate jobs count: Stop is never refused for a full queue
    return demo
