"""Training recipes: supervised (synthetic noise or pairs), Noise2Noise, Noise2Void.

`train_denoiser` is what `medresae train` runs; `fit_run` trains any
compiled-or-not Keras model on any data into a run folder with the same
callbacks (best and last checkpoints, CSV log, learning-rate schedule, early
stopping, resume).
"""

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import keras

from medresae._atomic import write_atomically
from medresae._defaults import TRAINING_NOISE
from medresae._seeding import python_random_seeded
from medresae._validation import check_choice, check_positive_int, check_positive_number
from medresae.callbacks import RunCheckpoint, read_run_state, resume_epoch, single_device_copy
from medresae.data import KINDS, PatchDataset
from medresae.distribute import data_parallel
from medresae.errors import InputFileError
from medresae.losses import get_loss
from medresae.models import ResNetAE, ResUNet
from medresae.noise import NoiseSpec
from medresae.performance import auto_workers, mixed_precision_policy, scaled_optimizer, warn_if_slow
from medresae.splits import split_by_volume

ARCHITECTURES = ("resunet", "resnetae")
SCHEDULES = ("plateau", "cosine", "constant")
BEST, LAST, STATE, HISTORY, FIGURE = "model.keras", "last.keras", "state.json", "history.csv", "training.png"


def build_denoiser(architecture="resunet", spatial_dims=3, channels=1, filters=(16, 32, 64), strides=2,
                   n_blocks=2, **kwargs):
    """A denoising model: a residual `ResUNet` (default) or a fully convolutional `ResNetAE`.

    Args:
        architecture: 'resunet' or 'resnetae'.
        spatial_dims: 2 or 3.
        channels: input (and output) channels.
        filters: filters per level, for both architectures (a single
            entry gives a ResNetAE two levels, the second twice as wide).
        strides: per-level down-sampling (e.g. (2, 2, 1) for thick slices).
        n_blocks: residual blocks per level.
        **kwargs: passed to the model.

    Examples:
        >>> model = build_denoiser("resunet", 3, filters=(8, 16), strides=(2, 2, 1))
        >>> model.spatial_divisor
        (2, 2, 1)
    """
    check_choice(architecture, "architecture", ARCHITECTURES)
    if architecture == "resunet":
        return ResUNet(spatial_dims=spatial_dims, in_channels=channels, filters=tuple(filters),
                       strides=strides, n_blocks=n_blocks, **kwargs)
    widths = tuple(filters) if len(filters) > 1 else (filters[0], 2 * filters[0])
    return ResNetAE(spatial_dims=spatial_dims, in_channels=channels, input_size=None, bottleneck_dim=None,
                    filters=widths, n_blocks=n_blocks, z_dim=filters[-1], strides=strides, output_activation=None,
                    **kwargs)


def _schedule_callbacks(schedule, learning_rate, epochs, patience, monitor):
    if schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=max(1, patience // 2),
                                                  min_lr=1e-6)]
    if schedule == "cosine":
        def cosine(epoch, lr):
            import math

            return 1e-6 + 0.5 * (learning_rate - 1e-6) * (1 + math.cos(math.pi * epoch / max(1, epochs)))

        return [keras.callbacks.LearningRateScheduler(cosine)]
    return []


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None


def plot_history(history_csv, out_png):
    """Writes the loss curves of a run (from its CSV log) to a PNG, atomically."""
    # A bare Figure (no pyplot): never switches the caller's matplotlib backend,
    # so figures keep showing in notebooks after a training run.
    from matplotlib.figure import Figure

    with open(history_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        # CSVLogger writes 'NA' for values an epoch did not produce.
        points = [(int(r["epoch"]) + 1, _number(r.get(key))) for r in rows]
        points = [(e, v) for e, v in points if v is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("medresae training")
    write_atomically(out_png, lambda temp: fig.savefig(temp, format="png", dpi=100), overwrite=True, suffix=".png")
    return out_png


def _drop_history_from(history_csv, epoch):
    """Keeps the CSV log's complete rows of the epochs before `epoch`, so a
    resumed run appends to a log without duplicates or a torn last line."""
    if not os.path.exists(history_csv):
        return
    with open(history_csv, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header = rows[0]
    kept = [r for r in rows[1:] if len(r) == len(header) and r[0].isdigit() and int(r[0]) < epoch]
    if len(kept) == len(rows) - 1:
        return

    def write(temp):
        with open(temp, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([header, *kept])

    write_atomically(history_csv, write, overwrite=True)


def _remove_stale_temporaries(run_dir):
    """Removes temporary files of this run's outputs left by a killed process."""
    names = tuple(f".{name}." for name in (BEST, LAST, STATE, HISTORY, FIGURE))
    for entry in os.listdir(run_dir):
        if entry.startswith(names) and ".tmp" in entry:
            try:
                os.remove(os.path.join(run_dir, entry))
            except OSError:
                pass


def fit_run(model: keras.Model, train_data: Any, run_dir: str | os.PathLike, validation_data: Any | None = None,
            epochs: int = 10, loss: str | Callable = "mse", learning_rate: float = 1e-3,
            schedule: Literal["plateau", "cosine", "constant"] = "plateau", early_stopping: int | None = 10,
            resume: bool = False, verbose: str | int = "auto",
            extra_callbacks: Sequence[keras.callbacks.Callback] = (),
            seed: int = 0) -> tuple[keras.Model, dict[str, list[float]]]:
    """Trains `model` into `run_dir` (model.keras, last.keras, state.json, history.csv, training.png).

    Args:
        model: a Keras model (compiled here with Adam and `loss`).
        train_data: anything `model.fit` takes (e.g. a `PatchDataset`).
        run_dir: the run folder (created if missing).
        validation_data: optional validation data.
        epochs: total epochs (a resumed run continues up to this number).
        loss: a Keras loss (name or function).
        learning_rate: initial Adam learning rate.
        schedule: 'plateau' (halve on a plateau), 'cosine' or 'constant'.
        early_stopping: patience in epochs, or None.
        resume: continue from `run_dir/last.keras` and `state.json`.
        verbose: Keras' progress bar setting.
        extra_callbacks: more Keras callbacks.
        seed: seeds the draws Keras makes while loading and training (the
            caller's random state is left alone; see
            `medresae._seeding.python_random_seeded`).

    Returns:
        `(model, history)`: the trained model and a dict of per-epoch logs.
    """
    epochs = check_positive_int(epochs, "epochs")
    check_choice(schedule, "schedule", SCHEDULES)
    learning_rate = check_positive_number(learning_rate, "learning_rate")
    os.makedirs(run_dir, exist_ok=True)
    paths = {name: os.path.join(run_dir, name) for name in (BEST, LAST, STATE, HISTORY, FIGURE)}
    # Keras draws seeds (loading, compiling, fitting) from Python's `random`: seeded here, restored after.
    with python_random_seeded(seed):
        initial_epoch, best = 0, None
        if resume:
            state = read_run_state(paths[STATE])
            if state is None or not os.path.exists(paths[LAST]):
                raise InputFileError(f"{run_dir}: no run to resume (no {LAST} and {STATE}); "
                                     "start without resume=True (--resume).")
            metadata = getattr(model, "metadata", None)
            try:
                model = keras.saving.load_model(paths[LAST])
            except Exception as err:
                raise InputFileError(f"{paths[LAST]}: cannot load the checkpoint to resume ({type(err).__name__}); "
                                     "restart the run without resume=True (--resume), with --overwrite") from None
            if metadata and hasattr(model, "metadata"):
                model.metadata = dict(metadata)
            if keras.backend.backend() == "torch":
                # A checkpoint compiled on JAX or TensorFlow records jit_compile=True, which torch
                # takes as torch.compile; eager is what "auto" means on torch.
                model.jit_compile = False
            initial_epoch, best = resume_epoch(state, model), state.get("best")
            _drop_history_from(paths[HISTORY], initial_epoch)
        else:
            # float16 gradients underflow without loss scaling.
            model.compile(optimizer=scaled_optimizer(model, keras.optimizers.Adam(learning_rate)), loss=loss)
        _remove_stale_temporaries(run_dir)
        monitor = "val_loss" if validation_data is not None else "loss"
        callbacks = [
            # The log row first, then the checkpoint and state: a kill between them leaves a log
            # at most one epoch ahead, which resuming trims to the checkpoint's epoch.
            keras.callbacks.CSVLogger(paths[HISTORY], append=resume),
            RunCheckpoint(paths[BEST], paths[LAST], paths[STATE], monitor=monitor, best=best),
            keras.callbacks.TerminateOnNaN(),
            *_schedule_callbacks(schedule, learning_rate, epochs, early_stopping or 10, monitor),
            *extra_callbacks,
        ]
        if early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=int(early_stopping)))
        history = {}
        if initial_epoch < epochs:
            result = model.fit(train_data, validation_data=validation_data, epochs=epochs,
                               initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose)
            history = result.history
    if os.path.exists(paths[HISTORY]):
        plot_history(paths[HISTORY], paths[FIGURE])
    return model, history


def _initial_model(path, spatial_dims, dtype=None, channels=1):
    """The model to fine-tune, checked against the patches it will see, in `dtype` if given."""
    import medresae  # noqa: F401  (registers medresae's layers)

    if not os.path.isfile(path):
        raise InputFileError(f"{path}: no such model file; check the path given to init (--init).")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:
        raise InputFileError(f"{path}: cannot be loaded as a Keras model ({type(err).__name__}).") from None
    dims = getattr(model, "spatial_dims", None)
    if dims is not None and dims != spatial_dims:
        raise InputFileError(f"{path}: a {dims}D model cannot train on {spatial_dims}D patches; "
                             f"give patch_size (--patch) {dims} sizes.")
    model_channels = model.inputs[0].shape[-1]
    if model_channels is not None and model_channels != channels:
        raise InputFileError(f"{path}: the model takes {model_channels} channel(s) and the training volumes have "
                             f"{channels}; start from a model with {channels} channel(s), or without init (--init)")
    if dtype is not None:
        if not hasattr(model, "with_dtype"):
            raise InputFileError(f"{path}: mixed precision (--mixed-precision) needs a medresae model to change its "
                                 "dtype; fine-tune it without mixed precision")
        model = model.with_dtype(dtype)
    if keras.backend.backend() == "torch":
        model.jit_compile = False  # as for resumed runs: eager on torch
    return model


def train_denoiser(kind: Literal["synthetic", "pairs", "noise2noise", "noise2void", "recorrupted"],
                   volumes: Sequence[str | os.PathLike | Sequence[str | os.PathLike]], run_dir: str | os.PathLike,
                   patch_size: Sequence[int] = (64, 64, 8),
                   noise: (str | NoiseSpec | list[str | NoiseSpec] | tuple[str | NoiseSpec, ...]
                           | None) = TRAINING_NOISE,
                   modality: Literal["mr", "ct"] = "mr", architecture: Literal["resunet", "resnetae"] = "resunet",
                   filters: Sequence[int] = (16, 32, 64),
                   strides: int | Sequence[int] | Sequence[int | Sequence[int]] | None = None, n_blocks: int = 2,
                   kernel_size: int | Sequence[int] = 3, epochs: int = 10, steps_per_epoch: int = 100,
                   batch_size: int = 4, validation_fraction: float | None = 0.2,
                   loss: Literal["mse", "l1", "ssim", "mse_ssim"] = "mse",
                   loss_weighting: Literal["none", "noise", "amplitude"] = "none", learning_rate: float = 1e-3,
                   schedule: Literal["plateau", "cosine", "constant"] = "plateau", early_stopping: int | None = 10,
                   resume: bool = False, mixed_precision: bool | Literal["auto", "bfloat16", "float16"] = False,
                   seed: int = 0, workers: int | Literal["auto"] = 1,
                   distribute: bool = False, augment: bool | Literal["flips", "resolution", "none"] = "flips",
                   init: str | os.PathLike | None = None, verbose: str | int = "auto",
                   extra_callbacks: Sequence[keras.callbacks.Callback] = (),
                   n2v_variant: Literal["n2v", "n2v2"] = "n2v", n2v_per_channel: bool = False,
                   channel_wise: bool = False,
                   ) -> tuple[keras.Model, dict[str, list[float]]]:
    """The `medresae train` recipe: data, model and training in one call.

    Args:
        kind: 'synthetic' (clean volumes + noise), 'pairs' (noisy, clean),
            'noise2noise' (noisy repeats) or 'noise2void' (noisy only; the
            loss is evaluated on blind-spot voxels only).
        volumes: paths or path pairs (see `medresae.data.PatchDataset`).
        run_dir: the run folder.
        patch_size: (X, Y, Z) patch, or (X, Y) for a 2D model on slices.
        noise: noise spec (or list of specs) for 'synthetic'.
        modality: 'mr' or 'ct' (intensity normalisation).
        architecture, filters, strides, n_blocks: the model (see
            `build_denoiser`); `strides` default: 2 in-plane, and 1 across
            slices when the patch is 8 voxels thick or less.
        kernel_size: convolution kernel, e.g. (3, 3, 1) for a model that
            never mixes slices (robust to any slice thickness).
        epochs, steps_per_epoch, batch_size: training length.
        validation_fraction: share of volumes held out (by volume), or None.
        loss: 'mse', 'l1', 'ssim' or 'mse_ssim'.
        loss_weighting: 'none'; 'noise': weight each patch by the
            inverse of its input noise power, so that every noise level
            counts the same; 'amplitude': by the inverse noise amplitude
            (see `medresae.data.PatchDataset`, `weighting`).
        learning_rate, schedule, early_stopping, resume: see `fit_run`.
        mixed_precision: train in mixed precision: True or 'auto' picks
            bfloat16 where the device computes in it and float16 (with loss
            scaling) elsewhere (`medresae.performance.mixed_precision_policy`);
            'bfloat16' or 'float16' forces one. It is the model's own
            dtype policy, saved with it (`model.with_dtype('float32')` gives a
            float32 copy for CPUs); the process-wide policy is left alone.
        seed: makes a run repeatable on one backend: the same seed gives
            the same weights with `workers=1` (several loader threads draw
            patches in whatever order they finish). A resumed run samples
            from the seed again, so it is not bit-identical to an
            uninterrupted one.
        workers: data loading workers (threads), or 'auto': one per CPU
            core this process may use, less one, at most 8
            (`medresae.performance.auto_workers`). With more than one,
            Keras' `PyDataset` keeps up to 10 batches ready ahead of the
            step (its `max_queue_size`).
        distribute: train data-parallel on all local devices (JAX and
            TensorFlow; see `medresae.distribute.data_parallel`).
            `batch_size` stays the global batch.
        augment: 'flips', 'resolution' or 'none' (see
            `medresae.data.PatchDataset`); validation batches are drawn
            once with the same augmentation.
        n2v_variant: for 'noise2void': 'n2v' (blind spots show a random
            neighbour; the residual `ResUNet`) or 'n2v2' (Hoeck et al. 2022:
            blind spots show their neighbourhood's median, and the model
            has no full-resolution skip and no residual connection, which
            removes the checkerboard artefacts N2V can learn).
        n2v_per_channel: for 'noise2void' on multi-channel volumes: mask
            different voxels in each channel (channels with independent
            noise) rather than the same voxels in all.
        channel_wise: scale each channel on its own rather than all
            channels with one range (see `medresae.data.PatchDataset`);
            recorded in the model's metadata, so `medresae.inference.denoise`
            scales the same way. The model gets as many channels as the
            volumes have (a 4D NIfTI file is (X, Y, Z, channels)).
        init: a `.keras` model to start from (fine-tuning, e.g. a preset on
            your own scans) instead of a new one; `architecture`, `filters`,
            `strides`, `n_blocks` and `kernel_size` are then taken from it.
            The optimizer and schedule start afresh.
        verbose, extra_callbacks: as in `fit_run`.

    Returns:
        `(model, history)`.

    Examples:
        >>> from medresae.sample_data import sample_path
        >>> model, history = train_denoiser("synthetic", [sample_path("brain_mr")], "run",
        ...                                 patch_size=(32, 32, 8), epochs=1, steps_per_epoch=2)  # doctest: +SKIP
    """
    check_choice(kind, "kind", KINDS)
    check_choice(n2v_variant, "n2v_variant", ("n2v", "n2v2"))
    if kind != "noise2void" and n2v_variant != "n2v":
        raise ValueError(f"`n2v_variant` applies to kind='noise2void'. Received: kind={kind!r}")
    if kind != "noise2void" and n2v_per_channel:
        raise ValueError(f"`n2v_per_channel` applies to kind='noise2void'. Received: kind={kind!r}")
    # The model's own dtype policy: nothing global changes, so the caller's policy stays as it was.
    if mixed_precision is True:
        mixed_precision = "auto"
    dtype = mixed_precision_policy(mixed_precision) if mixed_precision else None
    patch_size = tuple(patch_size)
    spatial_dims = len(patch_size)
    warn_if_slow(spatial_dims)
    if strides is None:
        strides = (2, 2, 1) if spatial_dims == 3 and patch_size[2] <= 8 else 2
    volumes = list(volumes)
    validation = None
    if validation_fraction and len(volumes) >= 2:
        volumes, held_out = split_by_volume(volumes, validation_fraction, seed=seed)
    else:
        held_out = []
    common = dict(patch_size=patch_size, batch_size=batch_size, noise=noise, modality=modality,
                  weighting=loss_weighting, channel_wise=channel_wise)
    if kind == "noise2void":
        common.update(n2v_replacement="median" if n2v_variant == "n2v2" else "neighbour",
                      n2v_per_channel=n2v_per_channel)
    if workers == "auto":
        workers = auto_workers()
    train = PatchDataset(kind, volumes, steps_per_epoch=steps_per_epoch, seed=seed, workers=workers,
                         augment=augment, **common)
    if held_out:
        steps = max(1, min(20, steps_per_epoch // 5))
        validation = PatchDataset(kind, held_out, steps_per_epoch=steps, fixed=True, seed=seed + 1,
                                  augment=augment, **common)
        if validation.channels != train.channels:
            raise InputFileError(f"the validation volumes have {validation.channels} channel(s) and the training "
                                 f"volumes {train.channels}; give volumes with one channel count")
    extra = {"kernel_size": kernel_size} if architecture == "resunet" else {}
    if n2v_variant == "n2v2":
        if architecture != "resunet":
            raise ValueError("`n2v_variant='n2v2'` needs architecture='resunet' (no top skip, no residual).")
        extra.update(top_skip=False, residual=False)
    with python_random_seeded(seed), data_parallel(distribute, batch_size) as devices:
        # Inside the context: the variables (built here, or loaded to resume) must be replicated.
        if init is not None:
            model = _initial_model(init, spatial_dims, dtype, channels=train.channels)
        else:
            model = build_denoiser(architecture, spatial_dims, train.channels, filters=filters, strides=strides,
                                   n_blocks=n_blocks, dtype=dtype, **extra)
        model.metadata = {
            "normalize": "window" if modality == "ct" else "percentile",
            "modality": modality,
            "kind": kind,
            # Only synthetic training adds noise; the other kinds learn the noise in their files.
            "noise": ([str(spec) for spec in train.noise_specs] or None) if kind == "synthetic" else None,
            "patch_size": list(patch_size),
            "augment": train.augment,
            "loss_weighting": train.weighting,
            **({"n2v_variant": n2v_variant, "n2v_per_channel": bool(n2v_per_channel)} if kind == "noise2void"
               else {}),
            "channels": train.channels,
            "channel_wise": bool(channel_wise),
            "backend": keras.backend.backend(),
            "seed": seed,
            "devices": len(devices),
        }
        if init is not None:
            model.metadata["init"] = os.path.basename(os.fspath(init))
        model, history = fit_run(model, train, run_dir, validation_data=validation, epochs=epochs,
                                 loss=get_loss(loss, masked=kind == "noise2void"),
                                 learning_rate=learning_rate, schedule=schedule,
                                 early_stopping=early_stopping, resume=resume, verbose=verbose,
                                 extra_callbacks=extra_callbacks, seed=seed)
    if distribute and keras.backend.backend() == "tensorflow":
        # A model built under MirroredStrategy splits every later predict() batch over the
        # replicas and fails on a batch smaller than the replica count: hand back a plain copy.
        model = single_device_copy(model)
    return model, history
