"""`medresae bench`: benchmarks users run on their own machine."""

from medresae_cli.common import (
    UsageError,
    add_ssim_window,
    check_report_folder,
    int_tuple,
    non_negative_float,
    non_negative_int,
    per_axis,
    positive_int,
)
from medresae_cli.defaults import BACKENDS, TRAINING_NOISE


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
    data.add_argument("--batch-size", type=positive_int, default=8)
    data.add_argument("--batches", type=positive_int, default=20, help="timed batches (default 20)")
    data.add_argument("--noise", default=TRAINING_NOISE, help=f"noise spec (default {TRAINING_NOISE})")
    data.add_argument("--json", metavar="OUT.json", help="also write the figures as JSON")
    data.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    data.set_defaults(func=run_bench_data)

    quality = bench_sub.add_parser(
        "quality", parents=[parent], help="medresae models vs classical denoisers (PSNR, SSIM, time, fidelity).",
        description="Add seeded noise to clean volumes and compare denoisers: a Gaussian filter, scikit-image's "
        "non-local means, dipy's nlmeans and bm4d (when installed) and any medresae models you name. Scores: "
        "PSNR and SSIM (whole volume and foreground), wall time, tissue-mean shift and residual-clean "
        "correlation. Writes quality.md, quality.json and quality.png to --out.",
    )
    quality.add_argument("files", nargs="*", help="clean NIfTI volumes (default: the volumes shipped with medresae)")
    quality.add_argument("--noise", nargs="+", default=None,
                         help="noise specs (default: rician:0.03 0.05 0.09 for MR, ct:1e5 3e4 1e4 for CT)")
    quality.add_argument("--model", action="append", default=[], metavar="[NAME=]MODEL.keras",
                         help="a medresae model to include (repeatable)")
    quality.add_argument("--preset", action="append", default=[], metavar="NAME",
                         help="a shipped preset to include, e.g. brain-mr (repeatable)")
    quality.add_argument("--adapt-steps", type=non_negative_int, default=0, metavar="N",
                         help="also run each model after N steps of self-supervised adaptation to each noisy "
                         "volume (as denoise --adapt; default 0: off)")
    quality.add_argument("--restore-mean", type=non_negative_float, default=None, metavar="MM",
                         help="give each model's output the noisy input's local mean, over a Gaussian of MM mm "
                         "(default: as denoise does, 5 for CT models and 0 for MRI models; 0 turns it off)")
    add_ssim_window(quality)
    quality.add_argument("--adapt-sigma", choices=("measured", "given", "both"), default="measured",
                         help="noise sigma the adaptation uses: measured on the noisy scan (as denoise --adapt), "
                         "given (the added noise's, as the baselines get it), or both (default measured)")
    quality.add_argument("--methods", nargs="+", default=None,
                         help="classical baselines (default: every installed one of gaussian, nlmeans-skimage, "
                         "nlmeans-dipy, bm4d)")
    quality.add_argument("--out", default="bench-quality", help="output folder (default ./bench-quality)")
    quality.add_argument("--seed", type=non_negative_int, default=0)
    quality.add_argument("--overwrite", action="store_true", help="replace the report of an earlier run in --out")
    quality.set_defaults(func=run_bench_quality)

    speed = bench_sub.add_parser(
        "speed", parents=[parent], help="Train and inference speed per backend, against plain PyTorch.",
        description="For each installed Keras backend (each in its own subprocess): median train-step time "
        "after warm-up, train voxels/s, whole-volume tiled inference voxels/s and peak memory; and the same "
        "network in plain PyTorch (channels-first and channels_last_3d; --torch-compile adds torch.compile) "
        "as the reference, with ratios and FLOPs per voxel. Writes speed.md and speed.json to --out.",
    )
    speed.add_argument("--model", default="resunet",
                       help="'resunet' (see --filters/--blocks/--strides) or a preset name (default resunet)")
    speed.add_argument("--filters", type=int_tuple, default=(16, 32, 64), help="ResUNet filters (default 16,32,64)")
    speed.add_argument("--blocks", type=positive_int, default=1, help="ResUNet blocks per level (default 1)")
    speed.add_argument("--strides", type=int_tuple, default=(2, 2, 1), help="ResUNet strides (default 2,2,1)")
    speed.add_argument("--patch", type=int_tuple, default=(64, 64, 64), help="training patch (default 64,64,64)")
    speed.add_argument("--batch-size", type=positive_int, default=2, help="training batch (default 2)")
    speed.add_argument("--steps", type=positive_int, default=5, help="timed train steps (default 5)")
    speed.add_argument("--warmup", type=non_negative_int, default=2, help="untimed train steps first (default 2)")
    speed.add_argument("--volume", type=int_tuple, default=(128, 128, 64),
                       help="volume for tiled inference (default 128,128,64; 512,512,400 for the memory check)")
    speed.add_argument("--tile", type=int_tuple, default=None, help="inference tile (default: automatic)")
    speed.add_argument("--backends", nargs="+", choices=BACKENDS, default=None,
                       help="Keras backends to measure (default: every installed one)")
    speed.add_argument("--no-reference", action="store_true", help="skip the plain-PyTorch reference")
    speed.add_argument("--torch-compile", action="store_true", help="also time the reference under torch.compile")
    speed.add_argument("--no-train", action="store_true", help="inference only (e.g. the memory check)")
    speed.add_argument("--mixed", action="store_true",
                       help="also run each backend in mixed precision (bfloat16 where the device has it, else "
                       "float16) and the reference with bfloat16 autocast")
    speed.add_argument("--quick", action="store_true",
                       help="a GPU-sized run that finishes in minutes: batch 8 of 64^3, 10 steps after 3, a "
                       "256x256x128 volume, --mixed (explicit options still win)")
    speed.add_argument("--out", default="bench-speed", help="output folder (default ./bench-speed)")
    speed.add_argument("--overwrite", action="store_true", help="replace the report of an earlier run in --out")
    speed.set_defaults(func=run_bench_speed)


def _phantom_file(folder):
    import nibabel as nib
    import numpy as np

    from medresae.sample_data import phantom_volume

    path = f"{folder}/phantom.nii.gz"
    nib.save(nib.Nifti1Image(phantom_volume(), np.eye(4)), path)
    return path


def run_bench_data(args):
    """`medresae bench data`: loader patches per second."""
    import os
    import tempfile

    from medresae._atomic import atomic_write_text, check_output_path
    from medresae._json import dumps
    from medresae.bench.data import loader_throughput

    if args.json:
        check_output_path(args.json, args.overwrite, inputs=args.files, what="a .json file")
    with tempfile.TemporaryDirectory() as tmp:
        files = args.files or [_phantom_file(tmp)]
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
        atomic_write_text(args.json, dumps(stats), overwrite=args.overwrite)
        print(f"wrote {os.path.abspath(args.json)}")
    return 0


def run_bench_quality(args):
    """`medresae bench quality`."""
    import os

    from medresae.bench.quality import markdown_table, run_quality_benchmark, write_report
    from medresae.errors import InputFileError
    from medresae.io import load_volume
    from medresae.sample_data import sample_path
    from medresae.saving import load_denoiser

    check_report_folder(args.out, ("quality.md", "quality.json", "quality.png"), args.overwrite)
    files = args.files or [sample_path("brain_mr_heldout"), sample_path("chest_ct")]
    volumes = []
    for path in files:
        volume = load_volume(path)
        name = os.path.basename(path).split(".nii")[0]
        volumes.append((name, volume.array[..., 0], volume.voxel_sizes))
    models = {}
    for item in args.model:
        name, _, path = item.rpartition("=")
        models[name or os.path.basename(path).split(".keras")[0]] = load_denoiser(path=path)
    for name in args.preset:
        try:
            models[name] = load_denoiser(preset=name)
        except InputFileError as err:
            raise UsageError(f"--{err}") from None  # the library names the argument, we the flag
    report = run_quality_benchmark(volumes, noise_specs=args.noise, models=models, methods=args.methods,
                                   seed=args.seed, adapt_steps=args.adapt_steps,
                                   adapt_sigma=args.adapt_sigma, ssim_window=args.ssim_window,
                                   restore_mean=args.restore_mean)
    paths = write_report(report, args.out)
    print()
    print(markdown_table(report))
    print(f"wrote {paths['md']}, {paths['json']}, {paths['png']}")
    return 0


# --quick: option -> (the parser's default, the quick value); an option given explicitly keeps its value.
_QUICK = {"batch_size": (2, 8), "steps": (5, 10), "warmup": (2, 3), "volume": ((128, 128, 64), (256, 256, 128))}


def _apply_quick(args):
    for name, (default, quick) in _QUICK.items():
        if getattr(args, name) == default:
            setattr(args, name, quick)
    args.mixed = True


def run_bench_speed(args):
    """`medresae bench speed`."""
    from medresae.bench.speed import markdown_table, run_speed_benchmark, write_report

    check_report_folder(args.out, ("speed.md", "speed.json"), args.overwrite)
    if args.model != "resunet":
        from medresae.presets import preset_path

        preset_path(args.model)  # a one-line error for an unknown name, before any subprocess
    if len(args.patch) != 3 or len(args.volume) != 3:
        raise UsageError(f"--patch and --volume take X,Y,Z. Received: {args.patch}, {args.volume}")
    if args.quick:
        _apply_quick(args)
    report = run_speed_benchmark(
        model=args.model, filters=args.filters, blocks=args.blocks, strides=per_axis(args.strides), patch=args.patch,
        batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, volume=args.volume, tile=args.tile,
        backends=args.backends, reference=not args.no_reference, torch_compile=args.torch_compile,
        train=not args.no_train, mixed=args.mixed,
    )
    paths = write_report(report, args.out)
    print()
    print(markdown_table(report))
    print(f"wrote {paths['md']}, {paths['json']}")
    return 0
