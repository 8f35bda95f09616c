"""`medresae denoise`: a NIfTI file, a DICOM folder or a folder of NIfTI files in, NIfTI out."""

import os
import time

from medresae._cli_common import int_tuple


def add_parser(sub, parent):
    p = sub.add_parser(
        "denoise", parents=[parent], help="Denoise a scan (NIfTI file, DICOM folder, or folder of NIfTI files).",
        description="Denoise IN with a trained model and write a NIfTI file with the input's affine and header. "
        "IN is a .nii/.nii.gz file, a folder holding one DICOM series, or a folder of NIfTI files (then OUT "
        "is a folder). Tiled inference with Gaussian blending keeps memory bounded by the tile size.",
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="MODEL.keras", help="a trained .keras model")
    which.add_argument("--preset", metavar="NAME", help="a pretrained model shipped with medresae: brain-mr, ct")
    p.add_argument("--tile", type=int_tuple, default=None, help="tile size X,Y,Z (default: automatic)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per model call (default 4)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average over flips")
    p.add_argument("--normalize", choices=("auto", "percentile", "window", "none"), default="auto",
                   help="intensity scaling (default: what the model was trained with, else percentile)")
    p.add_argument("--adapt", action="store_true",
                   help="first fine-tune the model on each input scan itself (self-supervised, no clean data)")
    p.add_argument("--adapt-steps", type=int, default=300, metavar="N", help="adaptation steps (default 300)")
    p.add_argument("--noise-sigma", type=float, default=None, metavar="S",
                   help="the scan's noise sigma in its units, for --adapt (default: measured in the foreground)")
    p.add_argument("--dtype", default="float32", help="output dtype: float32 (default) or 'input'")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def load_model(path):
    """Loads a .keras model with a one-line error for anything else."""
    import keras

    import medresae  # noqa: F401  (registers medresae's layers)
    from medresae.errors import InputFileError, InputFileNotFoundError

    if not os.path.exists(path):
        raise InputFileNotFoundError(f"{path}: no such model file; pass a .keras file written by medresae train")
    if not str(path).endswith(".keras"):
        raise InputFileError(f"{path}: not a .keras model file; pass a model saved with model.save('x.keras')")
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # zip errors, unknown layers, bad configs
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputFileError(f"{path}: cannot load this Keras model ({reason})") from None


def _load(args):
    if args.preset:
        from medresae.presets import load_preset

        return load_preset(args.preset)
    return load_model(args.model)


def _jobs(args):
    from medresae.errors import InputFileError
    from medresae.io import is_nifti_path, list_nifti

    if os.path.isdir(args.input):
        files = list_nifti(args.input)
        if files:
            if is_nifti_path(args.output):
                raise InputFileError(f"{args.output}: IN is a folder of NIfTI files, so OUT must be a folder")
            os.makedirs(args.output, exist_ok=True)
            return [(f, os.path.join(args.output, os.path.basename(f))) for f in files]
    return [(args.input, args.output)]


def run(args):
    from medresae.errors import InputFileError
    from medresae.inference import denoise
    from medresae.io import _check_output_path, load_volume, save_volume
    from medresae.performance import slow_path_message

    if not args.adapt and (args.noise_sigma is not None or args.adapt_steps != 300):
        raise InputFileError("--adapt-steps and --noise-sigma only apply with --adapt; add --adapt")
    if args.adapt_steps < 1:
        raise InputFileError(f"--adapt-steps must be >= 1. Received: {args.adapt_steps}")
    if args.noise_sigma is not None and not args.noise_sigma > 0:
        raise InputFileError(f"--noise-sigma must be > 0. Received: {args.noise_sigma}")
    jobs = _jobs(args)
    model = _load(args)
    pretrained = model.get_weights() if args.adapt else None
    slow = slow_path_message(getattr(model, "spatial_dims", 3))
    if slow:
        print(f"warning: {slow}", flush=True)
    normalize = args.normalize
    if normalize == "auto":
        normalize = (getattr(model, "metadata", None) or {}).get("normalize", "percentile")
    for source, target in jobs:
        start = time.perf_counter()
        volume = load_volume(source)
        # Fail before the long computation, not after it.
        _check_output_path(target, volume, args.overwrite)
        if args.adapt:
            from medresae.adaptation import adapt

            model.set_weights(pretrained)  # every scan adapts the model as loaded
            print(f"adapting the model to {source} ({args.adapt_steps} steps)", flush=True)
            model, info = adapt(model, volume, steps=args.adapt_steps, noise_sigma=args.noise_sigma)
            print(f"noise sigma {info['noise_sigma']:.4g}; check loss {info['check_loss_start']:.4g} -> "
                  f"{info['check_loss_best']:.4g}: kept the {info['kept']} model")
        print(f"denoising {source} ({'x'.join(map(str, volume.spatial_shape))})", flush=True)
        result = denoise(model, volume.array, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size,
                         tta=args.tta, normalize=None if normalize == "none" else normalize, progress=True)
        save_volume(target, result, like=volume, dtype=args.dtype, overwrite=args.overwrite)
        print(f"wrote {target} ({'x'.join(map(str, volume.spatial_shape))}, {time.perf_counter() - start:.1f} s)")
    return 0
