"""`medresae bench`: benchmarks users run on their own machine."""

from medresae._cli_common import int_tuple


def add_parser(sub, parent):
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
    data.add_argument("--patch", default="64,64,64", type=int_tuple, help="patch size X,Y,Z (default 64,64,64)")
    data.add_argument("--batch-size", type=int, default=8)
    data.add_argument("--batches", type=int, default=20, help="timed batches (default 20)")
    data.add_argument("--noise", default="rician:0.01-0.1", help="noise spec (default rician:0.01-0.1)")
    data.add_argument("--json", metavar="OUT.json", help="also write the figures as JSON")
    data.set_defaults(func=run_bench_data)


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


