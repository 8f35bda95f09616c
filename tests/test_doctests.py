"""Every `Example:` in medresae's docstrings runs, on this test process's backend.

Examples that need the user's own files or train for a while carry
`# doctest: +SKIP` on those lines; everything else is executed and its
output compared.
"""

import doctest
import importlib
import os
import pkgutil

import keras
import numpy as np
import pytest

import medresae

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(medresae.__path__, "medresae.")
    # torch_reference imports torch at module level by design; __main__ runs the CLI.
    if not m.name.endswith(("__main__", "torch_reference"))
) + ["medresae_napari.compute"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np, "keras": keras}, verbose=False, report=True,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see above)"
    assert os.path.isdir(tmp_path)
