PROFILE_VERSION = 1
VAE_SCALE_FACTOR = 8
FORWARD_CHUNK_SIZE = 1
FORWARD_CHUNK_DIM = 0
VAE_TILE_SAMPLE_SIZE = 512
PHASES = ("text_encode", "image_encode", "vae_encode", "denoise", "vae_decode")
