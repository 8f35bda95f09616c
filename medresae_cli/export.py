"""`medresae export`: a .keras model (or a preset) to a TensorFlow SavedModel or an ONNX file."""

import os

from medresae_cli.common import UsageError, int_tuple


def add_parser(sub, parent):
    p = sub.add_parser(
        "export", parents=[parent], help="Export a model as a TensorFlow SavedModel or ONNX file, checked.",
        description="Export MODEL.keras (or --preset NAME) with Keras' model.export, run the artifact with its "
        "own runtime (TensorFlow or onnxruntime) on a seeded probe and compare it with the Keras model before "
        "writing OUT. savedmodel works on the tensorflow and jax backends, onnx on tensorflow (any size) and "
        "torch (fixed --shape); --backend tensorflow exports both for any input size. The artifact is the "
        "network alone: it expects normalised inputs whose sizes are multiples of the model's spatial divisor.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL.keras", help="a trained .keras model")
    p.add_argument("--preset", metavar="NAME", help="a pretrained model shipped with medresae: brain-mr, ct")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="a folder for savedmodel, a file (.onnx) for onnx")
    p.add_argument("--format", choices=("savedmodel", "onnx"), default=None,
                   help="savedmodel or onnx (default: onnx if OUT ends with .onnx, else savedmodel)")
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


def run(args):
    from medresae.export import export_model

    fmt = args.format or ("onnx" if str(args.output).lower().endswith(".onnx") else "savedmodel")
    model = _load(args)
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
