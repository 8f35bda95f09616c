"""Import MONAI quietly: it logs a warning about an optional NVIDIA DICOM
decoder on every import, which users of a CPU machine cannot act on."""

import logging
import warnings

logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*nvImageCodec.*", category=UserWarning)
