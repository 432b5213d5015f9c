"""The one vocabulary of a job's phases, shared by progress events, the heartbeat, fault injection, the memory
model and the OOM ladder. A name here is also a key in configs/memory_profile.json and in sidecars."""
from __future__ import annotations

TEXT_ENCODE = "text_encode"
IMAGE_ENCODE = "image_encode"
VAE_ENCODE = "vae_encode"          # memory only: the image latent, inside image encoding for progress
DENOISE = "denoise"
DECODE = "decode"                  # the VAE turning latents into frames
DECODE_TILED = "decode_tiled"      # the memory curve of a tiled decode (same phase, another profile curve)

LOAD = "load"                      # progress only: the weights load before the first run
ATTEMPT = "attempt"                # progress only: an out-of-memory retry with a smaller plan
SAVE = "save"                      # progress and timings: writing the MP4

EVENT_PHASES = (TEXT_ENCODE, IMAGE_ENCODE, DENOISE, DECODE)            # what a running job reports
PROGRESS_PHASES = (LOAD, ATTEMPT, *EVENT_PHASES, SAVE)                 # what the page names (i2v.i18n progress_*)
MEMORY_PHASES = (TEXT_ENCODE, IMAGE_ENCODE, VAE_ENCODE, DENOISE, DECODE)  # what the memory model predicts
