"""Gradio Blocks UI. Handlers only translate between widgets and the service; layout first, wiring at the bottom."""
from __future__ import annotations

import logging

import gradio as gr

from i2v.core.settings import SETTINGS_BY_NAME, Setting
from i2v.runner import GenerationCancelled
from i2v.service import PHASE_LABELS as PHASE_NAMES
from i2v.service import BusyError, GenerationFailed, GenerationService, ProgressUpdate, RequestError

log = logging.getLogger(__name__)

QUEUE_MAX_SIZE = 8
STATUS_REFRESH_S = 2.0
TITLE = "i2v — image to video (I2VGen-XL)"


def _slider(setting: Setting, **kwargs) -> gr.Slider:
    return gr.Slider(minimum=setting.minimum, maximum=setting.maximum, step=setting.step, value=setting.default,
                     label=setting.label, info=setting.help, **kwargs)


def _textbox(setting: Setting, lines: int) -> gr.Textbox:
    return gr.Textbox(value=setting.default, label=setting.label, info=setting.help, lines=lines)


def status_markdown(state: dict) -> str:
    lines = [f"**Model:** {state['status']} — {state['message'] or state['spec']}"]
    if state.get("banner"):
        lines.insert(0, f"⚠️ **{state['banner']}**")
    return "\n\n".join(lines)


def report_markdown(state: dict) -> str:
    report = state.get("report")
    if not report:
        return "The load report appears once the model is loaded."
    rows = ["| optimisation | outcome | detail |", "|---|---|---|"]
    rows += [f"| {o['name']} | {o['status']} | {o['detail']} |" for o in report["outcomes"]]
    return f"Loaded `{report['model']}` on **{report['device']}** as {report['dtype']} in {report['load_seconds']} s\n\n" + "\n".join(rows)


def build_ui(service: GenerationService) -> gr.Blocks:
    S = SETTINGS_BY_NAME

    def generate(image, prompt, negative_prompt, resolution, num_frames, fps, num_inference_steps,
                 guidance_scale, seed, progress=gr.Progress()):
        """Generate a video from an image and a prompt; returns the MP4 and a JSON info object."""
        def report(update: ProgressUpdate) -> None:
            if update.total:   # steps and chunks: Gradio shows "i/total unit" and an ETA
                progress((update.index, update.total), desc=PHASE_NAMES.get(update.phase, update.phase), unit=update.unit)
            else:
                progress(update.fraction, desc=update.label)

        values = dict(prompt=prompt, negative_prompt=negative_prompt, resolution=resolution, num_frames=num_frames,
                      fps=fps, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed)
        try:
            result = service.generate(image, values, progress=report)
        except (RequestError, BusyError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except GenerationCancelled as exc:
            raise gr.Error(f"Stopped: the generation was cancelled and nothing was saved ({exc}).",
                           print_exception=False) from None
        except GenerationFailed as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - never a traceback on the page
            log.exception("unexpected error in generate")
            raise gr.Error(f"Unexpected error ({type(exc).__name__}); details are in logs/.", print_exception=False) from None
        return str(result.video_path), result.info()

    def cancel() -> str:
        """Stop the running generation at its next step."""
        return "Stopping at the next step…" if service.cancel() else "Nothing is running."

    def server_info() -> dict:
        """What the web server process itself holds: it must never initialise CUDA or load weights."""
        import os
        import sys

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

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}")
        status = gr.Markdown(status_markdown(service.model_state()))
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Input image", type="pil", sources=["upload", "clipboard"])
                prompt = _textbox(S["prompt"], lines=2)
                negative_prompt = _textbox(S["negative_prompt"], lines=2)
                resolution = gr.Dropdown(choices=list(S["resolution"].choices), value=S["resolution"].default,
                                         label=S["resolution"].label, info=S["resolution"].help)
                num_frames = _slider(S["num_frames"])
                fps = _slider(S["fps"])
                steps = _slider(S["num_inference_steps"])
                guidance = _slider(S["guidance_scale"])
                seed = gr.Number(value=S["seed"].default, label=S["seed"].label, info=S["seed"].help, precision=0)
                with gr.Row():
                    generate_button = gr.Button("Generate", variant="primary")
                    stop_button = gr.Button("Stop", variant="stop")
                stop_message = gr.Markdown()
            with gr.Column():
                video_out = gr.Video(label="Video", autoplay=True, loop=True)
                info = gr.JSON(label="Info: effective parameters, seed, timings, load report")
                with gr.Accordion("Load report", open=False):
                    report = gr.Markdown(report_markdown(service.model_state()))

        inputs = [image, prompt, negative_prompt, resolution, num_frames, fps, steps, guidance, seed]
        generate_button.click(generate, inputs=inputs, outputs=[video_out, info], api_name="generate")
        stop_button.click(cancel, outputs=[stop_message], api_name="cancel")
        timer = gr.Timer(STATUS_REFRESH_S)
        timer.tick(model_status, outputs=[status, report], api_name=False, show_progress="hidden")
        demo.load(model_status, outputs=[status, report], api_name="model_status")
        info_json = gr.JSON(visible=False)
        gr.Button(visible=False).click(server_info, outputs=[info_json], api_name="server_info")
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    return demo
