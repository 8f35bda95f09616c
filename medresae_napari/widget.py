"""The napari dock widget: pick a model and options, denoise the selected 3D layer into a new layer."""

from __future__ import annotations

import os
import time

import magicgui.widgets as mw
import numpy as np
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QObject, Signal, Slot

from medresae._defaults import ADAPT_STEPS
from medresae.presets import preset_names

MODEL_FILE = "model file (.keras)"


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the widget: a queued signal to a
    slot of an object that lives in the GUI thread."""

    changed = Signal(str, int, int)

    def __init__(self, callback):
        super().__init__()
        self._callback = callback
        self.changed.connect(self._deliver)

    @Slot(str, int, int)
    def _deliver(self, phase, done, total):
        self._callback(phase, done, total)


class DenoiseWidget(mw.Container):
    """Denoises the selected 3D image layer with a medresae preset or `.keras` model.

    The result is a new image layer named ``"<layer> denoised"`` with the
    input's scale, translation, rotation, shear and affine (so it overlays the
    input in world coordinates), contrast limits, colormap and metadata. The
    layer's first axis is taken as the slice axis (see
    `medresae_napari.compute`). The work runs in a thread with a progress bar;
    with *do no harm* checked, an output that changed the scan by much more
    than its measured noise (`medresae.guard.check_denoised`) is not added
    and a warning says why.

    Args:
        viewer: the napari viewer (napari passes it when it docks the widget).
    """

    def __init__(self, viewer):
        self._viewer = viewer
        self._models = {}  # model source -> (model, its weights as loaded)
        self._adapted = set()  # sources whose cached model was fine-tuned in place
        self._started = None
        self.worker = None  # the running (or last) napari worker
        self._image = mw.ComboBox(label="image", choices=self._image_layers,
                               tooltip="the 3D image layer to denoise (Z, Y, X: slices along the first axis)")
        self._model = mw.ComboBox(label="model", choices=[*preset_names(), MODEL_FILE], value=preset_names()[0],
                               tooltip="a preset shipped with medresae, or a model trained with `medresae train`")
        self._file = mw.FileEdit(label="model file", filter="*.keras", visible=False)
        self._tile = mw.SpinBox(label="tile (0: auto)", value=0, min=0, max=4096, step=8,
                             tooltip="tile edge in voxels (a multiple of the model's divisor); 0: automatic")
        self._overlap = mw.FloatSpinBox(label="overlap", value=0.25, min=0.0, max=0.9, step=0.05,
                                     tooltip="fraction of a tile shared with its neighbour")
        self._batch = mw.SpinBox(label="batch size (0: auto)", value=0, min=0, max=1024,
                                 tooltip="tiles per model call; 0: as many as fit in 4 x 96^3 voxels")
        self._tta = mw.CheckBox(text="test-time augmentation (average over flips)", value=False)
        self._adapt = mw.CheckBox(text="adapt the model to this scan first (slow)", value=False)
        self._adapt_steps = mw.SpinBox(label="adapt steps", value=ADAPT_STEPS, min=1, max=1_000_000, visible=False)
        self._guard = mw.CheckBox(text="do no harm: add nothing if the model removed more than noise", value=True)
        self._run = mw.PushButton(text="Denoise")
        self._progress = mw.ProgressBar(label="progress", value=0, min=0, max=1, visible=False)
        self._status = mw.Label(value="")
        super().__init__(widgets=[
            self._image, self._model, self._file, self._tile, self._overlap, self._batch, self._tta,
            self._adapt, self._adapt_steps, self._guard, self._run, self._progress, self._status,
        ])
        self._relay = _ProgressRelay(self._on_progress)
        self._model.changed.connect(lambda value: setattr(self._file, "visible", value == MODEL_FILE))
        self._adapt.changed.connect(lambda value: setattr(self._adapt_steps, "visible", bool(value)))
        self._run.changed.connect(self.run)
        for event in ("inserted", "removed", "moved", "changed"):
            getattr(viewer.layers.events, event).connect(self._refresh)
        viewer.layers.selection.events.active.connect(self._select_active)
        self._select_active()

    # Layer choices follow the viewer.

    def _image_layers(self, widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _refresh(self, event=None):
        self._image.reset_choices()

    def _select_active(self, event=None):
        active = self._viewer.layers.selection.active
        self._image.reset_choices()
        if isinstance(active, Image):
            self._image.value = active

    # Running.

    def _model_source(self):
        if self._model.value != MODEL_FILE:
            return self._model.value
        path = os.fspath(self._file.value)
        if not path or path == "." or os.path.isdir(path):
            raise ValueError("model file: choose a .keras file")
        return path

    def _check_layer(self, layer):
        if layer is None:
            raise ValueError("image: add or open a 3D image layer first")
        if layer.multiscale or layer.rgb:
            raise ValueError(f"image '{layer.name}': a {'multiscale' if layer.multiscale else 'RGB'} layer; "
                             "choose a single-scale greyscale 3D layer")
        if layer.data.ndim != 3:
            raise ValueError(f"image '{layer.name}': {layer.data.ndim}D; the widget denoises 3D layers (Z, Y, X)")

    def run(self, value=None):
        """Starts denoising the chosen layer in a thread.

        Returns:
            The started napari `FunctionWorker` (its `returned` signal
            carries a `medresae_napari.compute.LayerResult`), or None when
            the inputs were invalid (the status line says why).
        """
        layer = self._image.value
        try:
            self._check_layer(layer)
            source = self._model_source()
        except ValueError as err:
            self._fail(err)
            return None
        options = {
            "tile": self._tile.value or None, "overlap": float(self._overlap.value),
            "batch_size": int(self._batch.value) or None, "tta": bool(self._tta.value),
            "adapt_steps": int(self._adapt_steps.value) if self._adapt.value else 0,
            "voxel_sizes": tuple(abs(float(v)) for v in layer.scale),
        }
        self._run.enabled = False
        self._progress.visible = True
        self._progress.value = 0
        self._status.value = f"loading {source}"
        self._started = time.perf_counter()
        worker = create_worker(self._compute, source, layer.data, options, _start_thread=False,
                               _ignore_errors=True)  # errors go to `errored`, not to sys.excepthook
        worker.returned.connect(lambda result: self._add_result(layer, source, result))
        worker.errored.connect(self._fail)
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()
        return worker

    def _compute(self, source, data, options):
        from medresae.saving import load_denoiser
        from medresae_napari.compute import denoise_layer_data

        if source not in self._models:
            model = load_denoiser(preset=source) if source in preset_names() else load_denoiser(path=source)
            self._models[source] = (model, model.get_weights())
        model, weights = self._models[source]
        if source in self._adapted:  # every run starts from the model as loaded
            model.set_weights(weights)
            self._adapted.discard(source)
        if options["adapt_steps"]:
            self._adapted.add(source)
        return denoise_layer_data(np.asarray(data), model, progress=self._relay.changed.emit, **options)

    def _on_progress(self, phase, done, total):
        self._progress.max = max(int(total), 1)
        self._progress.value = int(done)
        self._status.value = f"{phase}: {done}/{total}"

    def _add_result(self, layer, source, result):
        seconds = time.perf_counter() - self._started
        check = result.report.message() if result.report is not None else "noise not measurable"
        if result.harmful and self._guard.value:
            message = (f"medresae: {layer.name}: {check}; added no layer (uncheck 'do no harm' to see the "
                       "model's output)")
            self._status.value = message
            show_warning(message)
            return
        if result.harmful:
            show_warning(f"medresae: {layer.name}: {check}; added the model's output anyway")
        adapted = result.adapt_info.get("kept") if result.adapt_info else None
        chosen = self._image.value
        self._viewer.add_image(
            result.data, name=f"{layer.name} denoised", scale=layer.scale, translate=layer.translate,
            rotate=layer.rotate, shear=layer.shear, affine=layer.affine.affine_matrix,
            contrast_limits=layer.contrast_limits, colormap=layer.colormap, blending=layer.blending,
            metadata={**layer.metadata, "medresae": {"model": source, "adapted": adapted, "check": check}},
        )
        self._image.value = chosen  # napari makes the new layer active; keep the user's choice
        self._status.value = f"{layer.name}: done in {seconds:.1f} s; {check}"

    def _fail(self, err):
        message = f"medresae: {' '.join(str(err).split())}"
        self._status.value = message
        show_error(message)

    def _finished(self):
        self._run.enabled = True
        self._progress.visible = False
