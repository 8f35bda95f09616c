"""`medresae evaluate`: PSNR, SSIM and NRMSE against a reference volume."""

import os

from medresae_cli.common import add_ssim_window


def add_parser(sub, parent):
    p = sub.add_parser(
        "evaluate", parents=[parent], help="PSNR/SSIM/NRMSE of images against a clean reference.",
        description="Compare one or more images with a clean reference: PSNR, SSIM (3D) and NRMSE on the whole "
        "volume and inside a mask (given with --mask, else an automatic foreground mask). Prints a table and "
        "optionally writes the same numbers as JSON.",
    )
    p.add_argument("images", nargs="+", metavar="IMG", help="NIfTI images to score")
    p.add_argument("--reference", required=True, metavar="CLEAN.nii.gz")
    p.add_argument("--mask", metavar="M.nii.gz", help="mask (non-zero = inside); default: automatic foreground")
    p.add_argument("--json", metavar="OUT.json",
                   help="write the scores as JSON (PSNR is null where an image equals the reference)")
    add_ssim_window(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


def run(args):
    import numpy as np

    from medresae._atomic import atomic_write_text, check_output_path
    from medresae._json import dumps
    from medresae.errors import InputFileError
    from medresae.io import load_volume
    from medresae.metrics import evaluate, foreground_mask

    if args.json:
        # Before any scoring: never the reference or an image, never an existing file unasked.
        check_output_path(args.json, args.overwrite, inputs=[args.reference, args.mask, *args.images],
                          what="a .json file")
    reference = load_volume(args.reference)
    ref = reference.array[..., 0] if reference.array.shape[-1] == 1 else reference.array
    if args.mask:
        mask = load_volume(args.mask, check_values=False).array[..., 0] != 0
        if mask.shape != ref.shape[:3]:
            raise InputFileError(f"--mask {args.mask}: mask shape {mask.shape} differs from the reference's "
                                 f"{ref.shape[:3]}; pass a mask on the reference's voxel grid")
        if not mask.any():
            raise InputFileError(f"--mask {args.mask}: the mask is empty (no non-zero voxel); pass a mask of "
                                 "the region to score, or leave --mask out for an automatic foreground mask")
    else:
        mask = foreground_mask(ref)
    scores = {}
    for path in args.images:
        image = load_volume(path)
        arr = image.array[..., 0] if image.array.shape[-1] == 1 else image.array
        if arr.shape != ref.shape:
            raise InputFileError(f"{path}: shape {arr.shape} differs from the reference's {ref.shape}")
        if not np.allclose(image.affine, reference.affine, atol=1e-3):
            print(f"note: {path} has a different affine from the reference; comparing voxel by voxel")
        scores[path] = evaluate(ref, arr, mask=mask, ssim_window=args.ssim_window)
    name_width = max(12, *(len(os.path.basename(p)) for p in scores))
    header = ["PSNR", "SSIM", "NRMSE", "PSNR mask", "SSIM mask", "NRMSE mask"]
    print(f"{'image':<{name_width}}" + "".join(f"{h:>12}" for h in header))
    for path, s in scores.items():
        values = [s["psnr"], s["ssim"], s["nrmse"], s["psnr_mask"], s["ssim_mask"], s["nrmse_mask"]]
        print(f"{os.path.basename(path):<{name_width}}" + "".join(f"{v:>12.4f}" for v in values))
    print(f"mask: {'given (' + args.mask + ')' if args.mask else 'automatic foreground'}, "
          f"{int(mask.sum())} voxels; SSIM window: {args.ssim_window}")
    if args.json:
        report = {"reference": args.reference, "mask": args.mask or "auto", "ssim_window": args.ssim_window,
                  "scores": scores}
        atomic_write_text(args.json, dumps(report), overwrite=args.overwrite)
        print(f"wrote {args.json}")
    return 0

