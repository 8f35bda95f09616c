"""`medresae bench speed`: train and inference speed per backend, against plain PyTorch.

Every measurement runs in its own Python subprocess (a Keras backend is
fixed per process, and peak memory is per process): for each installed
backend a training worker (median train-step time after warm-up, voxels per
second) and an inference worker (whole-volume tiled inference through
`medresae.inference.denoise`, voxels per second, peak RSS); and the same
network written in plain PyTorch (`medresae.bench.torch_reference`),
channels-first and channels_last_3d, eager and `torch.compile`d, timed the
same way (its inference goes through the same tiling code). FLOPs per voxel
come from PyTorch's `FlopCounterMode` on the reference network.

Everything runs on the backend's default device: a GPU when there is one
(the reference follows Keras' torch backend onto CUDA, and its steps are
timed to the device's completion). With `mixed=True` each backend also runs
in mixed precision (`medresae.performance.mixed_precision_policy`), and the
reference with bfloat16 autocast. Each row records its first step (where
compilation happens) and, on an accelerator, its peak device memory.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from medresae._defaults import BACKENDS
from medresae._json import dumps

# (layout, torch.compile, bfloat16 autocast)
REFERENCES = (
    ("channels_first", False, False),
    ("channels_last_3d", False, False),
    ("channels_last_3d", False, True),
    ("channels_first", True, False),
)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _median_time(step, steps, warmup):
    """(median of the timed steps, their times, the first step's time: where compilation happens)."""
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:]), times[warmup:], times[0]


def _keras_device():
    """The Keras backend's default device: 'cpu', or the accelerator's platform name."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "jax":
        import jax

        return jax.devices()[0].platform
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return "cpu"


def _device_peak_mb():
    """Peak memory on the accelerator the backend uses, in MB, or None on a CPU."""
    import keras

    backend = keras.backend.backend()
    if _keras_device() == "cpu":
        return None
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _keras_model(config):
    import medresae
    from medresae.performance import mixed_precision_policy
    from medresae.presets import load_preset

    dtype = mixed_precision_policy() if config.get("precision") == "mixed" else None
    if config.get("preset"):
        model = load_preset(config["preset"])
        return model.with_dtype(dtype) if dtype else model
    return medresae.ResUNet(spatial_dims=3, filters=tuple(config["filters"]), n_blocks=config["blocks"],
                            strides=tuple(config["strides"]), dtype=dtype)


def _architecture(model):
    """ResUNet constructor arguments the torch reference understands."""
    config = model.get_config()
    strides = config["strides"]
    if isinstance(strides, list) and strides and isinstance(strides[0], (list, tuple)):
        if any(tuple(s) != tuple(strides[0]) for s in strides):
            raise ValueError(f"The torch reference needs one stride for every level. Received: strides={strides}")
        strides = strides[0]
    return {"filters": list(config["filters"]), "blocks": config["n_blocks"], "strides": strides,
            "kernel_size": config["kernel_size"]}


def worker_keras(config):
    """Runs in a subprocess with KERAS_BACKEND set; returns a dict of figures."""
    import keras

    from medresae.performance import scaled_optimizer

    model = _keras_model(config)
    result = {"backend": keras.backend.backend(), "params": int(model.count_params()), "device": _keras_device(),
              "dtype_policy": model.get_layer("head").dtype_policy.name if config.get("precision") == "mixed"
              else "float32"}
    if config["mode"] == "train":
        rng = np.random.default_rng(0)
        shape = (config["batch_size"], *config["patch"], 1)
        x = rng.random(shape, dtype=np.float32)
        y = x * 0.9
        model.compile(optimizer=scaled_optimizer(model, keras.optimizers.Adam(1e-4)), loss="mse")
        # train_on_batch returns the loss as a Python float, so each step is timed to the device's completion.
        seconds, times, first = _median_time(lambda: model.train_on_batch(x, y), config["steps"], config["warmup"])
        result.update(
            jit_compile=bool(getattr(model, "jit_compile", False)),
            train_step_s=seconds, train_times_s=times, first_step_s=first,
            train_voxels_per_s=float(np.prod(shape)) / seconds,
        )
    else:
        volume = np.random.default_rng(0).random((*config["volume"], 1), dtype=np.float32)
        result.update(_time_inference(model, volume, config))
    result["peak_rss_mb"] = _peak_rss_mb()
    result["peak_device_mb"] = _device_peak_mb()
    return result


def _time_inference(model, volume, config):
    from medresae.inference import _predict, denoise, model_batch_shape

    kwargs = dict(overlap=config["overlap"], batch_size=config["infer_batch"], normalize="percentile",
                  progress=False)
    if config.get("tile"):
        kwargs["tile"] = tuple(config["tile"])
    shape = model_batch_shape(model, volume.shape, kwargs.get("tile"), kwargs["overlap"], kwargs["batch_size"])
    start = time.perf_counter()
    _predict(model, np.zeros(shape, volume.dtype))  # warm-up: compiles the tile batch shape
    first = time.perf_counter() - start
    before = _rss_mb()
    start = time.perf_counter()
    denoise(model, volume, **kwargs)
    seconds = time.perf_counter() - start
    return {"infer_s": seconds, "infer_voxels_per_s": float(np.prod(volume.shape[:3])) / seconds,
            "first_infer_s": first, "rss_before_infer_mb": before, "volume_mb": volume.nbytes / 2**20}


def _autocast(device, enabled):
    import contextlib

    import torch

    return torch.autocast(device, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


class _TorchPredictor:
    """Plain-PyTorch forward pass behind `denoise`'s callable interface."""

    def __init__(self, net, layout, divisor, device="cpu", autocast=False):
        self.net, self.layout, self.spatial_divisor = net, layout, divisor
        self.device, self.autocast = device, autocast

    def predict(self, batch):
        import torch

        with torch.inference_mode(), _autocast(self.device, self.autocast):
            x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(batch, -1, 1))).to(self.device)
            if self.layout == "channels_last_3d":
                x = x.contiguous(memory_format=torch.channels_last_3d)
            return np.moveaxis(self.net(x).float().cpu().numpy(), 1, -1)


def worker_torch(config):
    """Plain-PyTorch reference: train step and tiled inference of the same network."""
    import torch

    from medresae.bench.torch_reference import TorchResUNet

    torch.manual_seed(0)
    # Where Keras' torch backend runs: CUDA when there is a GPU.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    arch = config["architecture"]
    net = TorchResUNet(filters=arch["filters"], n_blocks=arch["blocks"], strides=arch["strides"],
                       kernel_size=arch["kernel_size"])
    layout, autocast = config["layout"], bool(config.get("autocast"))
    memory_format = torch.channels_last_3d if layout == "channels_last_3d" else torch.contiguous_format
    net = net.to(device=device, memory_format=memory_format)
    runner = torch.compile(net) if config["compile"] else net
    result = {"backend": f"plain torch {torch.__version__}", "layout": layout, "compile": config["compile"],
              "device": device, "autocast": "bfloat16" if autocast else None,
              # Counted as Keras does: batch-norm moving statistics included.
              "params": int(sum(p.numel() for p in net.parameters())
                            + sum(b.numel() for name, b in net.named_buffers() if "running" in name))}
    if config["mode"] == "train":
        shape = (config["batch_size"], 1, *config["patch"])
        x = torch.rand(shape, device=device).contiguous(memory_format=memory_format)
        y = x * 0.9
        optimizer = torch.optim.Adam(net.parameters(), 1e-4)
        net.train()

        def step():
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, autocast):
                loss = torch.nn.functional.mse_loss(runner(x).float(), y)
            loss.backward()
            optimizer.step()
            loss.item()  # waits for the device, as Keras' train_on_batch does

        seconds, times, first = _median_time(step, config["steps"], config["warmup"])
        result.update(train_step_s=seconds, train_times_s=times, first_step_s=first,
                      train_voxels_per_s=float(np.prod(shape)) / seconds)
        with torch.inference_mode():
            result["forward_flops_per_voxel"] = _flops_per_voxel(net, shape, device)
    else:
        net.eval()
        strides = arch["strides"] if isinstance(arch["strides"], (list, tuple)) else [arch["strides"]] * 3
        divisor = tuple(int(s) ** (len(arch["filters"]) - 1) for s in strides)
        volume = np.random.default_rng(0).random((*config["volume"], 1), dtype=np.float32)
        result.update(_time_inference(_TorchPredictor(runner, layout, divisor, device, autocast), volume, config))
    result["peak_rss_mb"] = _peak_rss_mb()
    result["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    return result


def _flops_per_voxel(net, shape, device="cpu"):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand((1, *shape[1:]), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        net.eval()(x)
    net.train()
    return counter.get_total_flops() / float(np.prod(shape[2:]))


def _run_worker(kind, config, backend=None, timeout=1800):
    env = dict(os.environ)
    if backend:
        env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "medresae.bench.speed", kind, json.dumps(config)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:300]}
    result = json.loads(lines[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def installed_backends():
    """The Keras backends whose framework is importable here."""
    import importlib.util

    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def run_speed_benchmark(model: str = "resunet", filters: Sequence[int] = (16, 32, 64), blocks: int = 1,
                        strides: Sequence[int] = (2, 2, 1), patch: Sequence[int] = (64, 64, 64),
                        batch_size: int = 2, steps: int = 5, warmup: int = 2, volume: Sequence[int] = (128, 128, 64),
                        overlap: float = 0.25, infer_batch: int | None = None, tile: Sequence[int] | None = None,
                        backends: Sequence[str] | None = None, reference: bool = True, torch_compile: bool = False,
                        layouts: Sequence[str] = ("channels_first", "channels_last_3d"), train: bool = True,
                        mixed: bool = False, progress: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Measures each backend and the plain-PyTorch reference; returns a report dict.

    Args:
        model: 'resunet' (built from `filters`, `blocks`, `strides`) or a
            preset name such as 'brain-mr'.
        patch, batch_size: the training batch `(batch_size, *patch, 1)`.
        steps, warmup: timed and untimed train steps (the median is reported).
        volume: the whole volume for tiled inference (random data).
        overlap, infer_batch, tile: `denoise` settings (`batch_size` for
            `infer_batch`; None: `denoise`'s default).
        backends: Keras backends to run (default: every installed one).
        reference: also run the plain-PyTorch network.
        torch_compile: also run the reference under `torch.compile` (slow to
            compile on CPU).
        layouts: memory layouts of the eager reference.
        train: also time training (False: inference only, e.g. for the
            memory check on a large volume).
        mixed: also run each backend in mixed precision (bfloat16 where the
            device computes in it, else float16 with loss scaling), and the
            channels_last_3d reference under bfloat16 autocast.
        progress: a print-like function (or None).
    """
    base = {"filters": list(filters), "blocks": int(blocks), "strides": list(strides), "patch": list(patch),
            "batch_size": int(batch_size), "steps": int(steps), "warmup": int(warmup), "volume": list(volume),
            "overlap": float(overlap), "infer_batch": None if infer_batch is None else int(infer_batch),
            "tile": list(tile) if tile else None,
            "preset": None if model == "resunet" else model}
    rows = []
    modes = ("train", "infer") if train else ("infer",)
    for backend in backends or installed_backends():
        for precision in ("float32", "mixed") if mixed else ("float32",):
            row = {"name": f"keras/{backend}" + ("+mixed" if precision == "mixed" else "")}
            for mode in modes:
                if progress:
                    progress(f"{row['name']:<34} {mode} ...")
                row[mode] = _run_worker("keras", dict(base, mode=mode, precision=precision), backend=backend)
            rows.append(row)
    if reference:
        architecture = _reference_architecture(base)
        for layout, compiled, autocast in REFERENCES:
            if (compiled and not torch_compile) or (not compiled and layout not in layouts) or (autocast and not mixed):
                continue
            row = {"name": f"torch/{layout}" + ("+compile" if compiled else "") + ("+bf16" if autocast else "")}
            for mode in modes:
                if progress:
                    progress(f"{row['name']:<34} {mode} ...")
                config = dict(base, mode=mode, layout=layout, compile=compiled, autocast=autocast,
                              architecture=architecture)
                # KERAS_BACKEND=torch: importing medresae then loads no second framework.
                row[mode] = _run_worker("torch", config, backend="torch")
            rows.append(row)
    return {"config": base, "rows": rows, "machine": _machine()}


def _reference_architecture(base):
    if base["preset"] is None:
        return {"filters": base["filters"], "blocks": base["blocks"], "strides": base["strides"], "kernel_size": 3}
    code = ("import json, sys; from medresae.bench.speed import _keras_model, _architecture; "
            f"print(json.dumps(_architecture(_keras_model({{'preset': {base['preset']!r}}}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, KERAS_BACKEND="torch"))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine():
    import platform

    return {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def row_label(row):
    """A report row's name, with "+mixed" spelled as the dtype policy the worker ran."""
    figures = row.get("train") or row.get("infer") or {}
    policy = figures.get("dtype_policy")
    return row["name"].replace("+mixed", f"+{policy}") if policy and policy != "float32" else row["name"]


def _mb(value):
    return "-" if value is None else f"{value:.0f}"


def markdown_table(report):
    """Figures per implementation with ratios to the plain-PyTorch channels-first reference."""
    rows = report["rows"]
    ref = next((r for r in rows if r["name"] == "torch/channels_first"), None)
    ref_train = (ref or {}).get("train", {}).get("train_step_s")
    ref_infer = (ref or {}).get("infer", {}).get("infer_voxels_per_s")
    lines = ["| implementation | device | train step (s) | first step (s) | train voxels/s | x plain torch (train) | "
             "inference voxels/s | x plain torch (inference) | first inference (s) | peak RSS inference (MB) | "
             "peak device memory train / inference (MB) | achieved GFLOP/s (train) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    flops = next((r["train"].get("forward_flops_per_voxel") for r in rows
                  if r["name"].startswith("torch/") and "forward_flops_per_voxel" in r.get("train", {})), None)
    for r in rows:
        train, infer = r.get("train", {}), r.get("infer", {})
        if "error" in train or "error" in infer:
            lines.append(f"| {r['name']} | | error: {train.get('error') or infer.get('error')} |" + " |" * 9)
            continue
        device = (train or infer).get("device", "cpu")
        name = row_label(r)
        if train:
            step, first, voxels = (f"{train['train_step_s']:.3f}", f"{train['first_step_s']:.2f}",
                                   f"{train['train_voxels_per_s']:.3g}")
            speedup = f"{ref_train / train['train_step_s']:.2f}" if ref_train else "-"
            # Training is about 3x the forward FLOPs (forward, two backward products).
            gflops = f"{3 * flops * train['train_voxels_per_s'] / 1e9:.1f}" if flops else "-"
        else:
            step = first = voxels = speedup = gflops = "-"
        infer_ratio = f"{infer['infer_voxels_per_s'] / ref_infer:.2f}" if ref_infer else "-"
        memory = f"{_mb(train.get('peak_device_mb'))} / {_mb(infer.get('peak_device_mb'))}"
        lines.append(f"| {name} | {device} | {step} | {first} | {voxels} | {speedup} | "
                     f"{infer['infer_voxels_per_s']:.3g} | {infer_ratio} | {infer['first_infer_s']:.2f} | "
                     f"{infer['peak_rss_mb']:.0f} | {memory} | {gflops} |")
    if flops:
        lines.append(f"\nForward FLOPs per voxel: {flops:,.0f} (PyTorch FlopCounterMode on the reference network).")
    for r in rows:
        infer = r.get("infer", {})
        if "rss_before_infer_mb" in infer:
            beyond = infer["peak_rss_mb"] - infer["rss_before_infer_mb"]
            lines.append(f"{r['name']}: inference peak RSS {infer['peak_rss_mb']:.0f} MB, "
                         f"{beyond:.0f} MB above the process before `denoise` (volume {infer['volume_mb']:.0f} MB "
                         "already allocated).")
    lines.append("\nx plain torch: > 1 is faster than plain PyTorch, channels-first, eager. First step: the first "
                 "train step (compilation included); first inference: one call on the batch shape `denoise` uses "
                 "(compilation included). +mixed_...: the backend's mixed-precision policy; +bf16: bfloat16 "
                 "autocast. Peak device memory: on an accelerator only.")
    return "\n".join(lines) + "\n"


def write_report(report, folder):
    """Writes speed.md and speed.json (atomically) into `folder`."""
    from medresae._atomic import atomic_write_text

    os.makedirs(folder, exist_ok=True)
    paths = {"md": os.path.join(folder, "speed.md"), "json": os.path.join(folder, "speed.json")}
    atomic_write_text(paths["md"], markdown_table(report))
    atomic_write_text(paths["json"], dumps(report))
    return paths


def _main(argv):
    kind, config = argv[0], json.loads(argv[1])
    if kind == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        result = worker_torch(config)
    else:
        result = worker_keras(config)
    print(json.dumps(result))


if __name__ == "__main__":
    _main(sys.argv[1:])
