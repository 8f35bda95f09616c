"""Import MONAI quietly: it logs a warning about an optional NVIDIA DICOM
decoder on every import, which users of a CPU machine cannot act on.

Only that plugin's own logger is raised to ERROR; no process-wide warning
filter is installed (MONAI reports this through logging, not `warnings`)."""

import logging

logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
