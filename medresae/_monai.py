"""Use MONAI quietly: it logs a warning about an optional NVIDIA DICOM
decoder on every import, and warns again whenever a `LoadImage` is built
(it builds every reader, even when one is named), which users of a CPU
machine cannot act on; medresae reads NIfTI with MONAI's nibabel reader.

Only that plugin's own logger is raised to ERROR, and `load_image_quietly`
silences that one warning while it builds the transform; no process-wide
warning filter is installed."""

import logging
import warnings

logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)

_NVIMGCODEC_WARNING = "NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register"


def load_image_quietly(keys, **kwargs):
    """MONAI's `LoadImaged(keys, **kwargs)`, built without the NVIDIA decoder warning."""
    from monai.transforms import LoadImaged

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NVIMGCODEC_WARNING, category=UserWarning)
        return LoadImaged(keys, **kwargs)
