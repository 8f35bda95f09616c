"""Draws docs/napari-widget.png: napari with the medresae widget docked, a noisy scan and its denoised layer.

Needs a display with OpenGL, e.g. on a headless Linux machine (Mesa's softpipe
driver: its llvmpipe driver and TensorFlow load clashing LLVM builds):
    GALLIUM_DRIVER=softpipe xvfb-run -a -s "-screen 0 1600x900x24" \
        python tools/napari_screenshot.py docs/napari-widget.png

The scan is the held-out sample crop (`brain_mr_heldout`) with Rician noise
at 5 % of its 99.5th percentile, denoised with the `brain-mr` preset.
"""

import argparse
import os
import time

import napari
import nibabel as nib
import numpy as np
from qtpy.QtWidgets import QApplication
from skimage.io import imsave

from medresae.metrics import psnr
from medresae.noise import rician
from medresae.sample_data import sample_path
from medresae_napari.widget import DenoiseWidget


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    args = parser.parse_args()
    image = nib.load(sample_path("brain_mr_heldout"))
    clean = np.asarray(image.dataobj, np.float32)
    noisy = rician(clean, 0.05 * float(np.percentile(clean, 99.5)), rng=0)
    # napari's first axis is the slider (slice) axis; show the scan in radiological view.
    layer_data = np.moveaxis(noisy, -1, 0)[:, ::-1].transpose(0, 2, 1)[:, ::-1]
    zooms = image.header.get_zooms()
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 760)
    viewer.add_image(layer_data, name="noisy scan", scale=(zooms[2], zooms[1], zooms[0]),
                     contrast_limits=(0.0, float(np.percentile(noisy, 99.8))))
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="medresae: Denoise", area="right")
    widget.run()
    while not widget._run.enabled:
        QApplication.processEvents()
        time.sleep(0.01)
    denoised = viewer.layers["noisy scan denoised"].data
    reference = np.moveaxis(clean, -1, 0)[:, ::-1].transpose(0, 2, 1)[:, ::-1]
    print(f"foreground PSNR {psnr(reference, layer_data, mask='auto'):.2f} -> "
          f"{psnr(reference, denoised, mask='auto'):.2f} dB")
    viewer.canvas.grid.enabled = True
    viewer.dims.set_point(0, zooms[2] * 8)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    imsave(args.out, viewer.window.screenshot(flash=False), check_contrast=False)
    # Mesa's software OpenGL and TensorFlow each bring their own LLVM, and tearing both down
    # crashes: the figure is written, so leave without the teardown.
    os._exit(0)


if __name__ == "__main__":
    main()
