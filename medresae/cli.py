"""The `medresae` command line (its entry point is `medresae_cli.main`).

Subcommands are added with `_add_*` functions; each takes `--backend` too,
so it can be written anywhere on the command line.
"""

import argparse
import platform
import sys

from medresae._version import __version__


def _backend_parent():
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend to use (sets KERAS_BACKEND before keras is imported).",
    )
    return parent


def build_parser():
    """The argument parser of the `medresae` command."""
    parent = _backend_parent()
    parser = argparse.ArgumentParser(
        prog="medresae",
        description="Denoise MRI and CT volumes with 2D/3D residual autoencoders "
        "(Keras 3 on TensorFlow, JAX or PyTorch).",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"medresae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser(
        "info",
        parents=[parent],
        help="Show versions, the active backend and the devices it sees.",
        description="Print medresae's version, the active Keras backend and its "
        "version, and the devices (CPU/GPU) the backend sees.",
    )
    info.set_defaults(func=run_info)

    bench = sub.add_parser(
        "bench", parents=[parent], help="Benchmarks you can run on your own machine.",
        description="Benchmarks: `bench data` measures the training data loader.",
    )
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK")
    bench_sub.required = True
    data = bench_sub.add_parser(
        "data", parents=[parent], help="Patches per second of the training data loader.",
        description="Patches per second that medresae's training loader delivers from cached "
        "volumes (random foreground-weighted crops, flips, synthetic noise). Without FILES it "
        "uses a synthetic 128^3 phantom.",
    )
    data.add_argument("files", nargs="*", help="NIfTI volumes to sample from (default: a synthetic phantom)")
    data.add_argument("--patch", default="64,64,64", type=_int_tuple, help="patch size X,Y,Z (default 64,64,64)")
    data.add_argument("--batch-size", type=int, default=8)
    data.add_argument("--batches", type=int, default=20, help="timed batches (default 20)")
    data.add_argument("--noise", default="rician:0.01-0.1", help="noise spec (default rician:0.01-0.1)")
    data.add_argument("--json", metavar="OUT.json", help="also write the figures as JSON")
    data.set_defaults(func=run_bench_data)
    return parser


def _int_tuple(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (2, 3) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected 2 or 3 positive ints like 64,64,8; got {text!r}")
    return values


def _phantom_volume(folder, size=128):
    """A 3D phantom NIfTI (stacked, scaled Shepp-Logan slices) for benchmarks."""
    import nibabel as nib
    import numpy as np
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    base = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    z = np.linspace(-1, 1, size)
    volume = np.stack([base * max(0.0, 1 - abs(t) ** 2) for t in z], axis=-1).astype(np.float32)
    path = f"{folder}/phantom.nii.gz"
    nib.save(nib.Nifti1Image(volume * 1000.0, np.eye(4)), path)
    return path


def run_bench_data(args):
    """`medresae bench data`: loader patches per second."""
    import json
    import os
    import tempfile

    from medresae.data import loader_throughput

    with tempfile.TemporaryDirectory() as tmp:
        files = args.files or [_phantom_volume(tmp)]
        stats = loader_throughput(files, patch_size=args.patch, batch_size=args.batch_size,
                                  batches=args.batches, noise=args.noise)
    stats["volumes"] = args.files or ["synthetic phantom 128^3"]
    stats["noise"] = args.noise
    print(f"patch size        {'x'.join(map(str, stats['patch_size']))}")
    print(f"batch size        {stats['batch_size']}")
    print(f"noise             {args.noise}")
    print(f"cache time        {stats['cache_seconds']:.2f} s (once)")
    print(f"seconds / batch   {stats['seconds_per_batch']:.4f}")
    print(f"patches / second  {stats['patches_per_second']:.1f}")
    if args.json:
        from medresae._atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(stats, indent=2, default=list))
        print(f"wrote {os.path.abspath(args.json)}")
    return 0


def _devices(backend):
    """Devices the backend sees, as 'kind:index (name)' strings."""
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        return [
            f"{d.device_type.lower()}:{d.name.rsplit(':', 1)[-1]}"
            for d in tf.config.list_logical_devices()
        ]
    if backend == "torch":
        import torch

        devices = ["cpu:0"]
        if torch.cuda.is_available():
            devices += [
                f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())
            ]
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps:0")
        return devices
    return ["cpu:0"]


def _backend_version(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module is None:
        return "-"
    return getattr(__import__(module), "__version__", "unknown")


def run_info(args):
    """`medresae info`: versions, backend and devices."""
    import keras
    import numpy

    backend = keras.backend.backend()
    rows = [
        ("medresae", __version__),
        ("python", platform.python_version()),
        ("keras", keras.__version__),
        ("numpy", numpy.__version__),
        ("backend", f"{backend} {_backend_version(backend)}"),
        ("devices", ", ".join(_devices(backend))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def main(argv=None):
    """Parses `argv` and runs the chosen subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("medresae: interrupted", file=sys.stderr)
        return 130
