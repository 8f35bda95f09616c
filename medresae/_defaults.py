"""Values shared by the library and the command, defined once.

This module imports nothing: the command reads it before it imports
medresae (and with it Keras), so that `--help` stays fast
(`medresae_cli.common.library_defaults`).
"""

# The Keras backends medresae runs on.
BACKENDS = ("tensorflow", "jax", "torch")

# Synthetic noise for training and the loader benchmark: Rician, 1-10 % of the robust maximum.
TRAINING_NOISE = "rician:0.01-0.1"

# SSIM windows: scikit-image's uniform one (the default) and Wang et al.'s Gaussian one.
SSIM_WINDOWS = ("uniform", "gaussian")

# Self-supervised fine-tuning steps of `--adapt`.
ADAPT_STEPS = 300

# Body vs air in CT: anything denser than this (in HU) is tissue; a volume whose minimum is
# below it looks like CT in Hounsfield units (air is -1000 HU).
CT_BODY_HU = -500.0
