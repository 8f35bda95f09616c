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
    # The plain-PyTorch reference does not depend on the Keras backend: its three rows run on one pass.
    reference = BACKEND == "torch"  # the shortest pass
    report = run_speed_benchmark(filters=(4, 8), blocks=1, strides=(2, 2, 1), patch=(16, 16, 8), batch_size=1,
                                 steps=1, warmup=1, volume=(24, 24, 8), backends=[BACKEND], reference=reference,
                                 layouts=("channels_first", "channels_last_3d"), mixed=True, progress=None)
    names = [row["name"] for row in report["rows"]]
    assert names == [f"keras/{BACKEND}", f"keras/{BACKEND}+mixed"] + (
        ["torch/channels_first", "torch/channels_last_3d", "torch/channels_last_3d+bf16"] if reference else [])
    for row in report["rows"]:
        assert "error" not in row["train"] and "error" not in row["infer"], row
        assert row["train"]["train_step_s"] > 0 and row["infer"]["infer_voxels_per_s"] > 0
        assert row["train"]["first_step_s"] > 0 and row["infer"]["first_infer_s"] > 0
        assert row["infer"]["peak_rss_mb"] > 0
        assert row["train"]["device"] == "cpu" and row["train"]["peak_device_mb"] is None  # no accelerator here
    keras_row, mixed_row = report["rows"][:2]
    assert (keras_row["train"]["dtype_policy"], mixed_row["train"]["dtype_policy"]) == ("float32", "mixed_bfloat16")
    table = markdown_table(report)
    assert f"| keras/{BACKEND} | cpu |" in table and f"| keras/{BACKEND}+mixed_bfloat16 | cpu |" in table
    assert "| first step (s) |" in table and "| - / - |" in table
    if reference:
        torch_row = report["rows"][2]
        assert keras_row["train"]["params"] == torch_row["train"]["params"]
        assert report["rows"][-1]["train"]["autocast"] == "bfloat16"
        assert torch_row["train"]["forward_flops_per_voxel"] > 0 and "FLOPs per voxel" in table
    paths = write_report(report, str(tmp_path / "s"))
    assert json.load(open(paths["json"]))["config"]["patch"] == [16, 16, 8]


def test_cli_bench_speed_rejects_bad_options(capsys):
    assert medresae_cli.main(["bench", "speed", "--model", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'nope'" in err and "\n" not in err
    assert medresae_cli.main(["bench", "speed", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_quick_mode_sizes_the_run_for_a_gpu_and_keeps_explicit_options():
    from medresae_cli.bench import _apply_quick
    from medresae_cli.parser import build_parser

    args = build_parser().parse_args(["bench", "speed", "--quick", "--steps", "4"])
    _apply_quick(args)
    assert (args.batch_size, args.steps, args.warmup, args.volume, args.mixed) == (8, 4, 3, (256, 256, 128), True)
