"""`medresae demo` with a tiny training budget (the full demo runs for minutes)."""

import json

import medresae_cli
from medresae_cli.demo import OUTPUTS


def test_demo_writes_its_outputs_and_refuses_to_clobber_them(tmp_path, capsys):
    out = tmp_path / "demo"
    assert medresae_cli.main(["demo", "--out", str(out), "--minutes", "0.05"]) == 0
    printed = capsys.readouterr().out
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["scores"]) == {"noisy", "medresae", "nlmeans (scikit-image)"}
    assert "PSNR" in printed and "nlmeans" in printed
    assert report["scores"]["nlmeans (scikit-image)"]["psnr"] > report["scores"]["noisy"]["psnr"]
    assert medresae_cli.main(["demo", "--out", str(out), "--minutes", "0.05"]) == 2
    assert "--overwrite" in capsys.readouterr().err
