"""`medresae export`: a .keras model (or a preset) to a TensorFlow SavedModel, an ONNX file or a BioImage Model
Zoo package."""

import os

from medresae_cli.common import UsageError, int_tuple


def add_parser(sub, parent):
    p = sub.add_parser(
        "export", parents=[parent],
        help="Export a model as a TensorFlow SavedModel, an ONNX file or a BioImage Model Zoo package, checked.",
        description="Export MODEL.keras (or --preset NAME) with Keras' model.export, run the artifact with its "
        "own runtime (TensorFlow or onnxruntime) on a seeded probe and compare it with the Keras model before "
        "writing OUT. savedmodel works on the tensorflow and jax backends, onnx on tensorflow (any size) and "
        "torch (fixed --shape); --backend tensorflow exports both for any input size. The artifact is the "
        "network alone: it expects normalised inputs whose sizes are multiples of the model's spatial divisor. "
        "bmz (tensorflow backend, pip install 'medresae[bmz]') writes a BioImage Model Zoo package (.zip) with "
        "ONNX and TensorFlow weights, the intensity scaling as pre- and post-processing, test tensors, a cover "
        "and documentation, validated with bioimageio.spec.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL.keras", help="a trained .keras model")
    p.add_argument("--preset", metavar="NAME", help="a pretrained model shipped with medresae: brain-mr, ct")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="a folder for savedmodel, a file (.onnx) for onnx, a .zip for bmz")
    p.add_argument("--format", choices=("savedmodel", "onnx", "bmz"), default=None,
                   help="savedmodel, onnx or bmz (default: from OUT: .onnx, .zip, else savedmodel)")
    p.add_argument("--name", default=None, help="bmz: the package's name (default: from the preset or file)")
    p.add_argument("--description", default=None,
                   help="bmz: one sentence about the model (default: the preset's, or its training metadata)")
    p.add_argument("--shape", type=int_tuple, default=None, metavar="X,Y[,Z]",
                   help="fixed spatial input size (default: any size where the backend allows it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip running the artifact and comparing it with the Keras model")
    p.set_defaults(func=run)


def _load(args):
    from medresae_cli.denoise import load_model

    if args.preset and args.model:
        raise UsageError("pass either MODEL.keras or --preset NAME, not both")
    if not args.preset and not args.model:
        raise UsageError("nothing to export: pass MODEL.keras or --preset NAME")
    return load_model(args)


def _size(shape):
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def _default_format(output):
    lower = str(output).lower()
    return "onnx" if lower.endswith(".onnx") else "bmz" if lower.endswith(".zip") else "savedmodel"


def _bmz(args, model):
    from medresae.bmz import export_bmz
    from medresae.presets import PRESETS

    if args.shape is not None or not args.check:
        raise UsageError("--shape and --no-check do not apply to --format bmz (any size; always checked)")
    if args.preset:
        name = args.name or f"medresae {args.preset}"
        description = args.description or f"A medresae 3D denoiser for {PRESETS[args.preset]['description']}."
    else:
        name = args.name or os.path.splitext(os.path.basename(args.model))[0]
        metadata = getattr(model, "metadata", None) or {}
        trained = ", ".join(f"{k} {metadata[k]}" for k in ("kind", "noise", "modality") if k in metadata)
        description = args.description or f"A medresae 3D denoiser ({trained or 'trained with medresae'})."
    path = export_bmz(model, args.output, name, description, overwrite=args.overwrite)
    print(f"wrote {path} (BioImage Model Zoo package: ONNX and TensorFlow weights, checked against the Keras "
          "model; validated with bioimageio.spec)")
    return 0


def run(args):
    from medresae.export import export_model

    fmt = args.format or _default_format(args.output)
    if fmt != "bmz" and (args.name or args.description):
        raise UsageError("--name and --description apply to --format bmz only")
    model = _load(args)
    if fmt == "bmz":
        return _bmz(args, model)
    print(f"exporting {args.preset or args.model} as {fmt}", flush=True)
    result = export_model(model, args.output, format=fmt, shape=args.shape, overwrite=args.overwrite,
                          check=args.check)
    if result.max_abs_diff is None:
        print("check skipped (--no-check)")
    else:
        print(f"check: max |exported - keras| = {result.max_abs_diff:.3g} on a probe of shape "
              f"{_size(result.probe_shape)} (tolerance {result.tolerance:.3g})")
    divisor = getattr(model, "spatial_divisor", None)
    notes = [f"input shape {_size(result.input_shape)}"]
    if divisor and result.input_shape[1:-1].count(None):
        notes.append(f"spatial sizes multiples of {_size(divisor)}")
    normalize = (getattr(model, "metadata", None) or {}).get("normalize")
    if normalize:
        notes.append(f"inputs normalised with {normalize!r} as in training")
    kind = "folder" if os.path.isdir(args.output) else "file"
    print(f"wrote {args.output} ({fmt} {kind}, {result.backend} backend; {'; '.join(notes)})")
    return 0
