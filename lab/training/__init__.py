"""Training: recipes (``config``), the loop (``loop``), its resumable state, distributed
set-up, learning-rate schedules and checkpoints (safetensors weights + a JSON sidecar).

Above the method wings (``attacks``, ``defenses``): a recipe names a defense or a denoiser
and the loop calls it. Below evaluation, runs and the two faces.
"""
