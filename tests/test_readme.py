"""The README's Python example runs as written."""

import os
import re

from helpers import REPO


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["denoised"].shape == (1, 37, 50, 23, 1)
    assert (tmp_path / "denoiser.keras").exists()
