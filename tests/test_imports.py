"""`import medresae` stays light: no data or foreign backend libraries."""

from conftest import BACKEND
from helpers import run_python

CHECK = """
import sys
import keras
before = {m.split('.')[0] for m in sys.modules}
import medresae
after = {m.split('.')[0] for m in sys.modules}
heavy = {'monai', 'torch', 'tensorflow', 'jax', 'nibabel', 'skimage', 'matplotlib', 'scipy'}
print(sorted((after - before) & heavy))
"""


def test_import_medresae_loads_no_heavy_module_beyond_keras_own():
    result = run_python(CHECK, BACKEND)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_import_registers_layers_for_loading():
    result = run_python(
        "import keras, medresae; "
        "print(keras.saving.get_registered_object('medresae>ResUNet').__name__)",
        BACKEND,
    )
    assert result.stdout.strip().splitlines()[-1] == "ResUNet"
