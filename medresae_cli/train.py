"""`medresae train`: train a denoiser on a folder of NIfTI volumes."""

import os

from medresae_cli.common import (
    UsageError,
    fraction,
    int_tuple,
    non_negative_int,
    per_axis,
    positive_float,
    positive_int,
    workers_count,
)
from medresae_cli.defaults import TRAINING_NOISE


def add_parser(sub, parent):
    p = sub.add_parser(
        "train", parents=[parent], help="Train a denoiser on NIfTI volumes.",
        description="Train a residual denoiser. Data: --clean DIR (clean volumes; noise is added on the fly), "
        "--pairs NOISY_DIR CLEAN_DIR (matched by file name), --noisy DIR --mode n2v (noisy volumes only, "
        "Noise2Void) or --noisy DIR1 DIR2 --mode n2n (two noisy repeats, matched by file name). Writes "
        "RUN_DIR/model.keras (best), last.keras, history.csv, training.png and state.json.",
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--clean", nargs="+", metavar="PATH",
                      help="clean volumes: NIfTI files and/or folders of them (synthetic noise is added)")
    data.add_argument("--pairs", nargs=2, metavar=("NOISY_DIR", "CLEAN_DIR"), help="noisy/clean pairs")
    data.add_argument("--noisy", nargs="+", metavar="DIR", help="noisy volumes (one folder for n2v, two for n2n)")
    p.add_argument("--mode", choices=("n2v", "n2v2", "n2n"), default="n2v",
                   help="self-supervised mode for --noisy: n2v (Noise2Void), n2v2 (N2V2: median blind spots, no "
                   "full-resolution skip; fewer checkerboard artefacts) or n2n (Noise2Noise)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--noise", nargs="+", default=[TRAINING_NOISE],
                   help=f"noise spec(s) for --clean, one drawn per patch (default {TRAINING_NOISE})")
    p.add_argument("--modality", choices=("mr", "ct"), default="mr", help="intensity scaling (default mr)")
    p.add_argument("--model", choices=("resunet", "resnetae"), default="resunet")
    p.add_argument("--patch", type=int_tuple, default=(64, 64, 8), help="patch X,Y,Z or X,Y (default 64,64,8)")
    p.add_argument("--filters", type=int_tuple, default=(16, 32, 64), help="filters per level (default 16,32,64)")
    p.add_argument("--strides", type=int_tuple, default=None,
                   help="down-sampling per axis, e.g. 2,2,1 (default: 2,2,1 for patches <= 8 thick, else 2)")
    p.add_argument("--blocks", type=positive_int, default=2, help="residual blocks per level")
    p.add_argument("--kernel", type=int_tuple, default=(3,), help="kernel size, e.g. 3,3,1 (default 3)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--steps-per-epoch", type=positive_int, default=100)
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--validation", type=fraction, default=0.2, help="fraction of volumes held out (0: none)")
    p.add_argument("--loss", choices=("mse", "l1", "ssim", "mse_ssim"), default="mse")
    p.add_argument("--loss-weighting", choices=("none", "noise", "amplitude"), default="none",
                   help="noise: weight each patch by 1 / its input noise power, so low noise levels count as "
                   "much as high ones; amplitude: by 1 / its noise amplitude, half-way (--clean, --pairs, "
                   "--mode n2n; default none)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
    p.add_argument("--schedule", choices=("plateau", "cosine", "constant"), default="plateau")
    p.add_argument("--early-stopping", type=non_negative_int, default=10, help="patience in epochs (0: off)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--init", metavar="MODEL.keras|PRESET", default=None,
                   help="start from this model's or preset's weights (fine-tune on new data; "
                   "its architecture replaces --model/--filters/--strides/--blocks/--kernel)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in RUN_DIR")
    p.add_argument("--augment", choices=("flips", "resolution", "none"), default="flips",
                   help="flips: random flips and in-plane turns (default); resolution: also any axis order, "
                   "in-plane zoom, simulated thick slices and (MR) gamma and bias fields, for a model that "
                   "generalises across protocols (2D patches: slices of any orientation)")
    p.add_argument("--channel-wise", action="store_true",
                   help="multi-channel volumes (4D files, X,Y,Z,channels): scale each channel on its own (e.g. "
                   "several contrasts); recorded in the model, so denoise scales the same way")
    p.add_argument("--n2v-per-channel", action="store_true",
                   help="with --mode n2v/n2v2 on multi-channel volumes: mask different voxels in each channel "
                   "(channels with independent noise; default: the same voxels in all)")
    p.add_argument("--mixed-precision", nargs="?", const="auto", default=None,
                   choices=("auto", "bfloat16", "float16"), metavar="{auto,bfloat16,float16}",
                   help="mixed-precision training (GPUs): bfloat16 where the device computes in it, else float16 "
                   "with loss scaling (auto, the default when the flag is given), or the one named")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="same seed, same backend, --workers 1: the same weights (default 0)")
    p.add_argument("--workers", type=workers_count, default=1,
                   help="data loading threads, or auto (one per core, less one, at most 8); more than 1 prefetches "
                   "batches but is not repeatable (default 1)")
    p.add_argument("--distribute", action="store_true",
                   help="data-parallel on all local GPUs (or CPU devices): JAX keras.distribution.DataParallel, "
                   "TensorFlow MirroredStrategy; not available on torch. --batch-size stays the global batch")
    p.set_defaults(func=run)


def _matched(folder_a, folder_b):
    from medresae.errors import InputFileError
    from medresae.io import list_nifti

    a = {os.path.basename(f): f for f in list_nifti(folder_a)}
    b = {os.path.basename(f): f for f in list_nifti(folder_b)}
    common = sorted(set(a) & set(b))
    if not common:
        raise InputFileError(f"{folder_a}, {folder_b}: no NIfTI files with the same name in both folders.")
    missing = sorted(set(a) ^ set(b))
    if missing:
        raise InputFileError(f"{folder_a}, {folder_b}: files without a partner: {', '.join(missing[:5])}.")
    return [(a[name], b[name]) for name in common]


def _volumes(args):
    from medresae.errors import InputFileError
    from medresae.io import list_nifti

    def files(folder):
        if not os.path.isdir(folder):
            raise InputFileError(f"{folder}: not a folder of NIfTI volumes.")
        found = list_nifti(folder)
        if not found:
            raise InputFileError(f"{folder}: no .nii or .nii.gz files in this folder.")
        return found

    if args.clean:
        found = []
        for path in args.clean:
            if os.path.isfile(path):
                found.append(path)
            else:
                found.extend(files(path))
        return "synthetic", found
    if args.pairs:
        return "pairs", _matched(*args.pairs)
    if args.mode in ("n2v", "n2v2"):
        if len(args.noisy) != 1:
            raise UsageError(f"--noisy with --mode {args.mode} takes one folder.")
        return "noise2void", files(args.noisy[0])
    if len(args.noisy) != 2:
        raise UsageError("--noisy with --mode n2n takes two folders of repeats (matched by file name).")
    return "noise2noise", _matched(*args.noisy)


def _init_path(value):
    from medresae.presets import PRESETS, preset_path

    if value is None or os.path.exists(value) or value not in PRESETS:
        return value
    return preset_path(value)


def run(args):
    from medresae.errors import InputFileError
    from medresae.training import BEST, train_denoiser

    if args.clean:
        # Before any volume or model is loaded: a typo costs nothing.
        from medresae.noise import NoiseSpec

        for text in args.noise:
            try:
                NoiseSpec.parse(text)
            except ValueError as err:
                raise UsageError(f"--noise {text!r}: {err}") from None
    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        raise InputFileError(f"--out {args.out}: is a file, but training writes a run folder (model.keras, "
                             "history.csv, ...); give the path of a folder, new or from an earlier run")
    kind, volumes = _volumes(args)
    if args.loss_weighting != "none" and kind == "noise2void":
        raise UsageError(f"--loss-weighting {args.loss_weighting}: measures each patch's noise against its target, "
                         "and --mode n2v/n2v2 has no target; use --loss-weighting none")
    if args.n2v_per_channel and kind != "noise2void":
        raise UsageError("--n2v-per-channel applies to --noisy DIR with --mode n2v or n2v2")
    if os.path.exists(os.path.join(args.out, BEST)) and not (args.resume or args.overwrite):
        raise InputFileError(f"{args.out}: already holds a trained run; pass --resume to continue or --overwrite.")
    model, history = train_denoiser(
        kind, volumes, args.out, patch_size=args.patch, noise=args.noise, modality=args.modality,
        architecture=args.model, filters=args.filters, n_blocks=args.blocks,
        strides=per_axis(args.strides), kernel_size=per_axis(args.kernel),
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        validation_fraction=args.validation or None, loss=args.loss, loss_weighting=args.loss_weighting,
        learning_rate=args.lr,
        schedule=args.schedule, early_stopping=args.early_stopping or None, resume=args.resume,
        mixed_precision=args.mixed_precision or False, seed=args.seed, workers=args.workers,
        distribute=args.distribute, augment=args.augment, init=_init_path(args.init),
        n2v_variant="n2v2" if kind == "noise2void" and args.mode == "n2v2" else "n2v",
        n2v_per_channel=args.n2v_per_channel, channel_wise=args.channel_wise,
    )
    print(f"wrote {os.path.join(args.out, BEST)} (best), history.csv, training.png")
    return 0
