"""`medresae simulate`: add seeded synthetic noise to a scan (NIfTI in, NIfTI out).

Used to make noisy/clean training pairs whose noise is simulated on whole
slices (low-dose CT needs the full ray paths through the body, which a
training patch does not have), and test scans with a known clean reference.
"""

import sys

from medresae_cli.common import UsageError, non_negative_int
from medresae_cli.defaults import CT_BODY_HU


def add_parser(sub, parent):
    p = sub.add_parser(
        "simulate", parents=[parent], help="Add seeded synthetic noise (MRI or low-dose CT) to a scan.",
        description="Add noise to a clean scan and write it as NIfTI with the input's affine and header. "
        "NOISE is a spec such as rician:0.05 (5 % of the robust maximum), chi:0.05:coils=8, gaussian:12:abs, "
        "ct:1e4 (low-dose CT, incident photons per ray, on each axial slice's sinogram; the input must be "
        "in HU) or a range such as ct:5e3-1e5 (one level drawn with --seed). The same seed gives the same "
        "output.",
    )
    p.add_argument("input", metavar="IN", help="clean scan (.nii/.nii.gz, .mgz, .nrrd, .mha or a DICOM series folder)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file; its suffix picks the format (.nii.gz, .nii, .mgz, .mgh, .nrrd, .mha)")
    p.add_argument("--noise", required=True, metavar="SPEC", help="noise spec, e.g. rician:0.05 or ct:1e4")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--dtype", default="float32", help="output dtype: float32 (default) or 'input'")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=run)


def run(args):
    from medresae.io import check_nifti_output, load_volume, save_volume
    from medresae.noise import NoiseSpec, simulate_volume

    try:
        spec = NoiseSpec.parse(args.noise)
    except ValueError as err:
        raise UsageError(f"--noise {args.noise!r}: {err}") from None
    volume = load_volume(args.input)
    check_nifti_output(args.output, volume, args.overwrite, dtype=args.dtype)
    array = volume.array[..., 0] if volume.array.shape[-1] == 1 else volume.array
    if spec.model == "ct" and float(array.min()) > CT_BODY_HU:
        print(f"medresae: warning: {args.input} does not look like CT in HU (minimum {float(array.min()):.0f}); "
              "low-dose CT noise assumes HU (air = -1000)", file=sys.stderr)
    noisy, level = simulate_volume(array, spec, volume.voxel_sizes, seed=args.seed)
    from medresae_cli.common import one_line_warnings

    with one_line_warnings():
        save_volume(args.output, noisy, like=volume, dtype=args.dtype, overwrite=args.overwrite)
    print(f"wrote {args.output} ({spec.model} noise, level {level:g}, seed {args.seed})")
    return 0
