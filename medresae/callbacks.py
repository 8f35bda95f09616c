"""Keras callbacks for training runs: atomic checkpoints and the run state for resuming."""

import json
import os
import time

import keras

from medresae._atomic import atomic_write_text, write_atomically
from medresae.errors import InputFileError


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary file and a rename, so a kill
    mid-write never leaves a corrupt .keras file."""
    return write_atomically(path, model.save, overwrite=True, suffix=".keras")


def single_device_copy(model):
    """A fresh, uncompiled copy of `model` (architecture, weights, metadata).

    Built outside any distribution scope, so it predicts on one device; models
    that cannot be rebuilt from their config are returned as they are.

    Examples:
        >>> from medresae.models import ResUNet
        >>> model = ResUNet(spatial_dims=2, filters=(4, 8), n_blocks=1)
        >>> copy = single_device_copy(model)
        >>> copy is not model and len(copy.weights) == len(model.weights)
        True
    """
    try:
        clone = type(model).from_config(model.get_config())
        clone.set_weights(model.get_weights())
    except Exception:  # subclassed models without a usable config
        return model
    if hasattr(model, "metadata") and hasattr(clone, "metadata"):
        clone.metadata = dict(model.metadata)
    return clone


def save_inference_model(model, path):
    """Saves `model` without its optimizer state (a third of the size), atomically."""
    return save_model_atomically(single_device_copy(model), path)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the best model, the last model and the run state after each epoch.

    - ``best_path``: the model with the lowest `monitor` so far (the model
      users keep, e.g. RUN_DIR/model.keras), without optimizer state.
    - ``last_path``: the model after the latest epoch, with its optimizer
      state, to resume from.
    - ``state_path``: JSON with the last finished epoch and the best value.

    Every file is written atomically (temporary file, then rename).

    Args:
        best_path: path of the best model (.keras).
        last_path: path of the last model (.keras).
        state_path: path of the JSON run state.
        monitor: the metric to minimise ('val_loss' falls back to 'loss'
            when there is no validation data).
        best: the best value so far (when resuming).

    Examples:
        >>> cb = RunCheckpoint("run/model.keras", "run/last.keras", "run/state.json")
    """

    def __init__(self, best_path, last_path, state_path, monitor="val_loss", best=None):
        super().__init__()
        self.best_path = best_path
        self.last_path = last_path
        self.state_path = state_path
        self.monitor = monitor
        self.best = float("inf") if best is None else float(best)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor, logs.get("loss"))
        save_model_atomically(self.model, self.last_path)
        if value is not None and float(value) < self.best:
            self.best = float(value)
            save_inference_model(self.model, self.best_path)
        # The optimizer step count ties this state to the checkpoint it describes: a kill between
        # the two writes leaves a checkpoint one epoch ahead, which resuming detects.
        state = {"epoch": epoch + 1, "best": self.best, "monitor": self.monitor,
                 "iterations": optimizer_iterations(self.model)}
        atomic_write_text(self.state_path, json.dumps(state, indent=2))


def optimizer_iterations(model):
    """The optimizer's step count (0 for an uncompiled model)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def read_run_state(state_path):
    """The JSON run state written by RunCheckpoint, or None when there is none.

    Raises:
        InputFileError: the file exists but is not a run state.
    """
    if not os.path.exists(state_path):
        return None
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        int(state["epoch"])
    except (ValueError, KeyError, TypeError):
        raise InputFileError(
            f"{state_path}: not a medresae run state (expected JSON with an 'epoch'); restart the run with "
            "--overwrite") from None
    return state


def resume_epoch(state, model):
    """The epoch a resumed run starts from: the state's, or one more when the
    checkpoint was written after the state (a kill between the two writes)."""
    epoch = int(state["epoch"])
    recorded = state.get("iterations")
    if recorded is not None and optimizer_iterations(model) > int(recorded):
        epoch += 1
    return epoch


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `seconds` have passed (checked after every batch).

    Examples:
        >>> model.fit(data, epochs=1000, callbacks=[TimeBudget(180)])  # doctest: +SKIP
    """

    def __init__(self, seconds):
        super().__init__()
        self.seconds = float(seconds)
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True
