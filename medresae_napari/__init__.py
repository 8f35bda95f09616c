"""medresae in napari: a dock widget that denoises the selected 3D image layer.

Installed with ``pip install "medresae[napari]"``; napari finds it through
the ``napari.manifest`` entry point (``napari.yaml`` in this package), under
*Plugins > medresae: Denoise*. What the widget computes lives in
`medresae_napari.compute`, which does not import napari or Qt.
"""
