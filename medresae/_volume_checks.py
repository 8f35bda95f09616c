"""Checks that training volumes are usable, each error naming the file: the path exists and is
NIfTI, no voxel is NaN or inf, the volume is not constant and holds at least one patch."""

import os

import numpy as np
from monai.transforms import MapTransform

from medresae.errors import InputFileError
from medresae.io import is_nifti_path


class CheckVolumed(MapTransform):
    """Rejects NaN/inf, constant volumes and volumes smaller than the patch,
    naming the file; records the voxel size for the CT noise model."""

    def __init__(self, keys, patch_size, may_be_constant=()):
        super().__init__(keys)
        self.patch_size = patch_size
        self.may_be_constant = may_be_constant

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            x = d[key]
            path = str(getattr(x, "meta", {}).get("filename_or_obj", key))
            arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                raise InputFileError(f"{path}: {bad} voxels are NaN or inf; fix or mask them before training.")
            if key not in self.may_be_constant and float(arr.max()) == float(arr.min()):
                raise InputFileError(f"{path}: the volume is constant ({float(arr.min())!r}); nothing to learn from.")
            spatial = arr.shape[1:]
            if any(s < p for s, p in zip(spatial, self.patch_size)):
                raise InputFileError(
                    f"{path}: volume {tuple(spatial)} is smaller than the patch size "
                    f"{tuple(self.patch_size)}; choose a smaller patch_size (--patch)."
                )
            if hasattr(x, "pixdim"):
                d.setdefault("spacing", tuple(float(s) for s in np.asarray(x.pixdim)[:3]))
        return d


def find_input_error(exc):
    """The InputFileError inside MONAI's wrapped exception chain, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, InputFileError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def check_paths(items, keys):
    for item in items:
        for key in keys:
            path = item[key]
            if not os.path.exists(path):
                raise InputFileError(f"{path}: no such file.")
            if not is_nifti_path(path):
                raise InputFileError(f"{path}: not a NIfTI file (.nii or .nii.gz) as training data.")
