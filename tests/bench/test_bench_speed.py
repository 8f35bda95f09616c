"""`medresae bench speed` and its plain-PyTorch reference network (figures are not asserted)."""

import json

import pytest
from conftest import BACKEND

import medresae_cli
from medresae.bench.speed import markdown_table, run_speed_benchmark, write_report
from medresae.models import ResUNet


@pytest.mark.parametrize("filters, blocks, strides", [((8, 16), 1, (2, 2, 1)), ((8, 16, 32), 2, 2)])
def test_torch_reference_is_the_same_network(filters, blocks, strides):
    torch = pytest.importorskip("torch")
    from medresae.bench.torch_reference import TorchResUNet

    net = TorchResUNet(filters=filters, n_blocks=blocks, strides=strides)
    keras_model = ResUNet(spatial_dims=3, filters=filters, n_blocks=blocks, strides=strides)
    # Keras counts batch-norm moving statistics as (non-trainable) parameters.
    torch_count = sum(p.numel() for p in net.parameters()) + sum(
        b.numel() for name, b in net.named_buffers() if "running" in name)
    assert torch_count == keras_model.count_params()
    x = torch.rand(1, 1, 16, 16, 8)
    assert torch.equal(net.eval()(x), x)  # zero-initialised head: the identity, as ResUNet


def test_speed_benchmark_measures_this_backend_and_the_reference(tmp_path):
    report = run_speed_benchmark(filters=(4, 8), blocks=1, strides=(2, 2, 1), patch=(16, 16, 8), batch_size=1,
                                 steps=1, warmup=1, volume=(24, 24, 8), backends=[BACKEND],
                                 layouts=("channels_first",), progress=None)
    names = [row["name"] for row in report["rows"]]
    assert names == [f"keras/{BACKEND}", "torch/channels_first"]
    for row in report["rows"]:
        assert "error" not in row["train"] and "error" not in row["infer"], row
        assert row["train"]["train_step_s"] > 0 and row["infer"]["infer_voxels_per_s"] > 0
        assert row["infer"]["peak_rss_mb"] > 0
    keras_row, torch_row = report["rows"]
    assert keras_row["train"]["params"] == torch_row["train"]["params"]
    assert torch_row["train"]["forward_flops_per_voxel"] > 0
    table = markdown_table(report)
    assert f"| keras/{BACKEND} |" in table and "FLOPs per voxel" in table
    paths = write_report(report, str(tmp_path / "s"))
    assert json.load(open(paths["json"]))["config"]["patch"] == [16, 16, 8]


def test_cli_bench_speed_rejects_bad_options(capsys):
    assert medresae_cli.main(["bench", "speed", "--model", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'nope'" in err and "\n" not in err
    assert medresae_cli.main(["bench", "speed", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
