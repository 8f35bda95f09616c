"""`medresae denoise`: a volume file, a DICOM folder or a folder of volume files in, the same format out."""

import os
import sys
import time

from medresae_cli.common import (
    UsageError,
    fraction,
    int_tuple,
    non_negative_float,
    one_line_warnings,
    positive_float,
    positive_int,
)
from medresae_cli.defaults import ADAPT_STEPS


def add_parser(sub, parent):
    p = sub.add_parser(
        "denoise", parents=[parent], help="Denoise a scan (volume file, DICOM folder, or folder of volume files).",
        description="Denoise IN with a trained model and write OUT with the input's geometry (and header, "
        "within one format). IN is a .nii/.nii.gz, .mgz/.mgh, .nrrd/.nhdr or .mha/.mhd file, a folder holding "
        "one DICOM series, or a folder of such files (then OUT is a folder and each output keeps its input's "
        "name and format). OUT's suffix picks the format: .nii, .nii.gz, .mgz, .mgh, .nrrd or .mha. "
        "Tiled inference with Gaussian blending keeps memory bounded by the tile size.",
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="MODEL.keras", help="a trained .keras model")
    which.add_argument("--preset", metavar="NAME", help="a pretrained model shipped with medresae: brain-mr, ct")
    p.add_argument("--tile", type=int_tuple, default=None, help="tile size X,Y,Z (default: automatic)")
    p.add_argument("--overlap", type=fraction, default=0.25, help="tile overlap fraction (default 0.25)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="tiles per model call (default: as many as fit in 4 x 96^3 voxels)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average over flips")
    p.add_argument("--normalize", choices=("auto", "percentile", "window", "none"), default="auto",
                   help="intensity scaling (default: what the model was trained with, else percentile)")
    p.add_argument("--channel-wise", action="store_true", default=None,
                   help="scale each channel of a multi-channel scan on its own (default: as the model was trained)")
    p.add_argument("--adapt", action="store_true",
                   help="first fine-tune the model on each input scan itself (self-supervised, no clean data)")
    p.add_argument("--adapt-steps", type=positive_int, default=ADAPT_STEPS, metavar="N",
                   help=f"adaptation steps (default {ADAPT_STEPS})")
    p.add_argument("--noise-sigma", type=positive_float, default=None, metavar="S",
                   help="the scan's noise sigma in its units, for --adapt (default: measured in the foreground)")
    p.add_argument("--restore-mean", type=non_negative_float, default=None, metavar="MM",
                   help="give the output the input's local mean inside the head or body, over a Gaussian of MM mm "
                   "(default: 5 for CT models, whose noise has zero mean in HU; 0 for MRI models; 0 turns it off)")
    p.add_argument("--no-guard", action="store_true",
                   help="keep the model's output even where it removed several times the measured noise "
                   "(default: warn and write the input unchanged; docs/presets.md#do-no-harm)")
    p.add_argument("--dtype", default="float32", help="output dtype: float32 (default) or 'input'")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def load_model(args):
    """The model of `--model PATH` or `--preset NAME` (one-line errors name the flag or file)."""
    from medresae.errors import InputFileError
    from medresae.saving import load_denoiser

    try:
        return load_denoiser(path=args.model, preset=args.preset)
    except InputFileError as err:
        if args.preset and str(err).startswith("preset "):  # the library names the argument, we the flag
            raise UsageError(f"--{err}") from None
        raise


def _output_name(source):
    """The output file name for `source` in a folder run: the same name, in a single-file format."""
    stem, suffix = os.path.splitext(os.path.basename(source))
    # A detached header and its data file are two files; write the single-file form of the format.
    return stem + {".nhdr": ".nrrd", ".mhd": ".mha"}.get(suffix.lower(), suffix)


def _jobs(args):
    """(input, output) pairs; checks what can be checked before a model is loaded."""
    from medresae.errors import InputFileError, InputFileNotFoundError
    from medresae.io import check_nifti_output, is_volume_path, list_volumes

    if os.path.isdir(args.input):
        files = list_volumes(args.input)
        if files:
            if is_volume_path(args.output) or (os.path.exists(args.output) and not os.path.isdir(args.output)):
                raise InputFileError(f"{args.output}: IN is a folder of volume files, so OUT must be a folder")
            parent = os.path.dirname(os.path.abspath(args.output))
            if not os.path.isdir(parent):
                raise InputFileError(f"{args.output}: folder {parent} does not exist; create it first")
            jobs = [(f, os.path.join(args.output, _output_name(f))) for f in files]
            if os.path.isdir(args.output):
                for source, target in jobs:
                    check_nifti_output(target, None, args.overwrite, dtype=args.dtype, source=source)
            return jobs
    elif not os.path.exists(args.input):
        raise InputFileNotFoundError(f"{args.input}: no such file or folder; check the path")
    check_nifti_output(args.output, None, args.overwrite, dtype=args.dtype, source=args.input)
    return [(args.input, args.output)]


def run(args):
    from medresae.io import load_volume

    if not args.adapt and (args.noise_sigma is not None or args.adapt_steps != ADAPT_STEPS):
        raise UsageError("--adapt-steps and --noise-sigma only apply with --adapt; add --adapt")
    jobs = _jobs(args)
    # A bad first input fails now, before a model is loaded.
    first = load_volume(jobs[0][0])
    model = load_model(args)
    if args.tile is not None:
        from medresae.inference import check_model

        try:
            check_model(model, tile=args.tile)
        except ValueError as err:
            raise UsageError(f"--tile {','.join(map(str, args.tile))}: {err}") from None
    out_dir = args.output if len(jobs) > 1 or jobs[0][1] != args.output else None
    created = out_dir is not None and not os.path.isdir(out_dir)
    if created:
        os.makedirs(out_dir)
    try:
        return _denoise_all(args, jobs, model, first)
    except BaseException:
        if created and not os.listdir(out_dir):
            os.rmdir(out_dir)  # an output folder made by this run and left empty
        raise


def _model_label(args):
    return f"--preset {args.preset}" if args.preset else args.model


def _denoise_all(args, jobs, model, first):
    import numpy as np

    from medresae.errors import InputFileError, ModelOutputError
    from medresae.inference import denoise
    from medresae.io import check_nifti_output, load_volume, save_volume
    from medresae.mean_restoration import default_sigma_mm, restore_local_mean
    from medresae.performance import slow_path_message

    pretrained = model.get_weights() if args.adapt else None
    slow = slow_path_message(getattr(model, "spatial_dims", 3))
    if slow:
        print(f"medresae: warning: {slow}", file=sys.stderr, flush=True)
    restore_mm = default_sigma_mm(model) if args.restore_mean is None else args.restore_mean
    normalize = args.normalize
    if normalize == "auto":
        normalize = (getattr(model, "metadata", None) or {}).get("normalize", "percentile")
    for i, (source, target) in enumerate(jobs):
        start = time.perf_counter()
        volume = first if i == 0 else load_volume(source)
        first = None  # free the first volume once it is done
        # Fail before the long computation, not after it.
        check_nifti_output(target, volume, args.overwrite, dtype=args.dtype)

        def run(model, what="denoising"):
            print(f"{what} {source} ({'x'.join(map(str, volume.spatial_shape))})", flush=True)
            try:
                with one_line_warnings(prefix=f"{source}: "):
                    return denoise(model, volume.array, tile=args.tile, overlap=args.overlap,
                                   batch_size=args.batch_size, tta=args.tta,
                                   normalize=None if normalize == "none" else normalize, progress=True,
                                   channel_wise=args.channel_wise)
            except ModelOutputError as err:
                raise InputFileError(f"{_model_label(args)}: {' '.join(str(err).split())}") from None
            except ValueError as err:
                # The volume does not fit the model (channels, size): name the file.
                raise InputFileError(f"{source}: {' '.join(str(err).split())}") from None

        if args.adapt:
            from medresae.adaptation import adapt, keep_original_outside_foreground

            model.set_weights(pretrained)  # every scan adapts the model as loaded
            original = run(model, "denoising with the model as loaded")
            print(f"adapting the model to {source} ({args.adapt_steps} steps)", flush=True)
            model, info = adapt(model, volume, steps=args.adapt_steps, noise_sigma=args.noise_sigma)
            print(f"noise sigma {info['noise_sigma']:.4g}; check loss {info['check_loss_start']:.4g} -> "
                  f"{info['check_loss_best']:.4g}: kept the {info['kept']} model")
            if info["kept"] == "adapted":
                # Adaptation trains and checks on the foreground only; outside it the original output stays.
                result = keep_original_outside_foreground(run(model), original)
            else:
                result = original
            original = None
        else:
            result = run(model)
        if restore_mm:
            result = restore_local_mean(volume.array, result, volume.voxel_sizes, sigma_mm=restore_mm)
        n_bad = result.size - int(np.count_nonzero(np.isfinite(result)))
        if n_bad and args.no_guard:  # with the guard, the input is written instead
            raise InputFileError(
                f"{_model_label(args)}: the model returned {n_bad} NaN or infinite voxels for {source}; nothing "
                "was written (the model is broken, or the scan is far from what it was trained on)"
            )
        result = _guard(args, model, volume, result, source)
        with one_line_warnings():
            save_volume(target, result, like=volume, dtype=args.dtype, overwrite=args.overwrite)
        print(f"wrote {target} ({'x'.join(map(str, volume.spatial_shape))}, {time.perf_counter() - start:.1f} s)")
    return 0


def _guard(args, model, volume, result, source):
    """The input itself when the model removed much more than noise (a scan
    unlike its training data), unless --no-guard; a warning either way."""
    from medresae.guard import check_denoised

    modality = (getattr(model, "metadata", None) or {}).get("modality", "mr")
    try:
        report = check_denoised(volume.array, result, modality=modality,
                                sigma=args.noise_sigma if args.adapt else None)
    except ValueError:
        return result  # too small or too uniform a scan to measure its noise: nothing to compare with
    if report.ok:
        return result
    if args.no_guard:
        print(f"medresae: warning: {source}: {report.message()}; kept the output (--no-guard)",
              file=sys.stderr, flush=True)
        return result
    print(f"medresae: warning: {source}: {report.message()}; wrote the input unchanged (pass --no-guard to "
          "keep the model's output, or train a model on such scans)", file=sys.stderr, flush=True)
    return volume.array.astype(result.dtype, copy=False)
