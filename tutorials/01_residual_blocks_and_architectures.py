# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Residual blocks and the classic architectures
#
# medresae's layers are ordinary Keras 3 layers written with `keras.ops`
# only, so the same code runs on TensorFlow, JAX and PyTorch. One argument,
# `spatial_dims` (2 or 3), switches every layer and model between 2D and 3D;
# tensors are channels-last: `(batch, X, Y[, Z], channels)`.
#
# This tutorial builds the three residual block variants, a small ResNet
# classifier, ResNet-50, and the residual autoencoders (`ResNetAE`,
# `ResNetVAE`) and the `ResUNet` denoiser.

# %%
import os

import keras
import matplotlib.pyplot as plt
import numpy as np

import medresae
from medresae.layers import ResidualBlock

SMALL = os.environ.get("CI") == "true"  # the test suite runs every tutorial with small sizes
print("Keras backend:", keras.backend.backend())

# %% [markdown]
# ## Three residual blocks
#
# - `basic` (He et al. 2015): conv 3 -> norm -> ReLU -> conv 3 -> norm, plus
#   the input, then ReLU;
# - `bottleneck` (ResNet-50 and deeper): 1x1 down to `filters`, 3x3, 1x1 up
#   to 4 x `filters`;
# - `preactivation` (He et al. 2016): norm -> ReLU -> conv, twice, then the
#   sum, with nothing after it.
#
# A projection shortcut (1x1 conv) appears when the channel count or the
# stride changes.

# %%
x = np.random.default_rng(0).standard_normal((2, 16, 16, 16, 8)).astype("float32")
for variant in ("basic", "bottleneck", "preactivation"):
    block = ResidualBlock(16, variant=variant, spatial_dims=3)
    y = block(x)
    print(f"{variant:<14} in {tuple(x.shape)} -> out {tuple(y.shape)}, {block.count_params():,} parameters")

# Anisotropic: a stride of (2, 2, 1) halves the in-plane size and keeps thick slices.
down = ResidualBlock(16, spatial_dims=3, strides=(2, 2, 1))
print("strides (2, 2, 1):", tuple(down(x).shape))

# %% [markdown]
# ## A small 3D ResNet classifier
#
# `ResNet(depth=18 | 34 | 50 | 101 | 152)` is a backbone or a classifier,
# in 2D or 3D. Here a ResNet-18 on single-channel volumes, trained for a
# few steps on random data just to show the calls.

# %%
size = 32 if SMALL else 64
classifier = medresae.ResNet(depth=18, spatial_dims=3, in_channels=1, num_classes=2,
                              filters=(16, 32, 64, 128) if SMALL else (64, 128, 256, 512))
classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
volumes = np.random.default_rng(1).random((4, size, size, 16, 1), dtype=np.float32)
labels = np.array([0, 1, 0, 1])
history = classifier.fit(volumes, labels, epochs=1, batch_size=2, verbose=0)
print("ResNet-18 3D:", f"{classifier.count_params():,} parameters,",
      "loss after one epoch:", round(float(history.history["loss"][-1]), 3))

# %% [markdown]
# ## ResNet-50 in 2D: the same network as Keras' ResNet50
#
# Same layers, same weight shapes, same 25,636,712 parameters (a test
# checks this on every backend).

# %%
resnet50 = medresae.ResNet(depth=50, spatial_dims=2, in_channels=3, num_classes=1000, input_size=(224, 224))
print(f"ResNet-50: {resnet50.count_params():,} parameters")

# %% [markdown]
# ## The residual autoencoders
#
# `ResNetAE` follows Hou et al. 2019 and farrell236/ResNetAE (its default
# configuration has the reference's 11,378,619 parameters). `ResNetVAE`
# adds the reparameterisation and a KL term (`beta`). `ResUNet` is the
# denoiser medresae trains by default: encoder-decoder skips and residual
# learning (the output is the input minus the predicted noise).

# %%
ae = medresae.ResNetAE(spatial_dims=2, in_channels=1, input_size=(64, 64), filters=(8, 16, 32, 64), n_blocks=1,
                       z_dim=16, bottleneck_dim=32)
vae = medresae.ResNetVAE(spatial_dims=2, in_channels=1, input_size=(64, 64), filters=(8, 16, 32, 64), n_blocks=1,
                         z_dim=16, bottleneck_dim=32, seed=0)
unet = medresae.ResUNet(spatial_dims=3, filters=(16, 32, 64), n_blocks=1, strides=(2, 2, 1))
for name, model in (("ResNetAE", ae), ("ResNetVAE", vae), ("ResUNet", unet)):
    print(f"{name:<10} {model.count_params():>10,} parameters, input divisible by {model.spatial_divisor}")

# %%
counts = {"ResNet-18 3D": classifier.count_params(), "ResNet-50 2D": resnet50.count_params(),
          "ResNetAE": ae.count_params(), "ResNetVAE": vae.count_params(), "ResUNet": unet.count_params()}
plt.figure(figsize=(7, 3))
plt.barh(list(counts), list(counts.values()))
plt.xscale("log")
plt.xlabel("parameters")
plt.title("Size of the models built above")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The model summary and a plot of the architecture

# %%
unet.summary(line_length=100)

# %%
# keras.utils.plot_model needs pydot and the graphviz program (`apt install graphviz`).
os.makedirs("tutorial-output", exist_ok=True)
try:
    keras.utils.plot_model(unet, to_file="tutorial-output/resunet.png", show_shapes=True, dpi=60)
    image = plt.imread("tutorial-output/resunet.png")
    plt.figure(figsize=(6, 12))
    plt.imshow(image)
    plt.axis("off")
    plt.title("ResUNet (16-32-64, strides (2, 2, 1))")
    plt.show()
except ImportError as err:  # pydot or graphviz missing
    print("plot_model needs pydot and graphviz:", err)

# %% [markdown]
# Any `.keras` file saved from these models loads on the other backends:
# every medresae layer and model is registered with Keras on
# `import medresae`.

# %%
unet.save("tutorial-output/resunet.keras")
reloaded = keras.saving.load_model("tutorial-output/resunet.keras")
probe = np.random.default_rng(2).random((1, 32, 32, 8, 1), dtype=np.float32)
difference = np.abs(reloaded.predict(probe, verbose=0) - unet.predict(probe, verbose=0)).max()
print("max difference after reload:", float(difference))
