"""One table of medresae's GPU figures: train steps against plain PyTorch, whole-volume denoising, the loader.

Usage: python benchmarks/gpu_check.py OUT [--small]

Runs on the backends installed here (TensorFlow too when it has a GPU), each
in its own process, and prints one Markdown table (also OUT/gpu_check.md,
with every figure in OUT/gpu_check.json):

1. `medresae bench speed --quick`: median train step of a 16-32-64 ResUNet
   (strides 2,2,1, one block) on batches of 8x64^3, in float32 and mixed
   precision, against the same network in plain PyTorch (channels-first,
   channels_last_3d, bfloat16 autocast); tiled inference of a 256x256x128
   volume; first-step times and peak device memory.
2. `denoise` of a 512x512x400 volume with the `brain-mr` preset, batch 16
   (the time inside `denoise`).
3. `train_denoiser` from files (the sample volumes, patches 64x64x16, batch
   16, mixed precision) against `train_on_batch` of the same model on arrays
   already in memory: how much the loader holds the device back.

`--small` shrinks every size so the whole check runs on a CPU in minutes (to
try the script; its figures mean nothing for a GPU).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {
    False: dict(patch=(64, 64, 64), batch=8, steps=10, warmup=3, volume=(256, 256, 128),
                denoise_volume=(512, 512, 400), denoise_batch=16, train_patch=(64, 64, 16), train_batch=16,
                train_steps=30),
    True: dict(patch=(16, 16, 8), batch=2, steps=2, warmup=1, volume=(32, 32, 16),
               denoise_volume=(64, 64, 32), denoise_batch=4, train_patch=(16, 16, 8), train_batch=2,
               train_steps=4),
}


def _worker_denoise(sizes):
    from medresae.inference import denoise, model_batch_shape
    from medresae.presets import load_preset

    model = load_preset("brain-mr")
    volume = np.random.default_rng(0).random((*sizes["denoise_volume"], 1), dtype=np.float32)
    # Compiles the one batch shape the timed call uses.
    model.predict_on_batch(np.zeros(model_batch_shape(model, volume.shape, batch_size=sizes["denoise_batch"]),
                                    np.float32))
    start = time.perf_counter()
    denoise(model, volume, batch_size=sizes["denoise_batch"], progress=False)
    return {"denoise_s": time.perf_counter() - start}


def _worker_loader(sizes, folder):
    import keras

    from medresae.sample_data import sample_path
    from medresae.training import train_denoiser

    class _BatchTimes(keras.callbacks.Callback):
        """Time from one batch's end to the next one's: the step plus any wait for the loader."""

        def __init__(self):
            super().__init__()
            self.times, self._last = [], None

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if self._last is not None:
                self.times.append(now - self._last)
            self._last = now

    timer = _BatchTimes()
    steps = sizes["train_steps"]
    model, _ = train_denoiser("synthetic", [sample_path("brain_mr"), sample_path("brain_mr_heldout")], folder,
                              patch_size=sizes["train_patch"], batch_size=sizes["train_batch"], epochs=1,
                              steps_per_epoch=steps, validation_fraction=None, mixed_precision=True,
                              workers=max(1, min(8, (os.cpu_count() or 2) - 1)), verbose=0,
                              extra_callbacks=[timer])
    x = np.random.default_rng(0).random((sizes["train_batch"], *sizes["train_patch"], 1), dtype=np.float32)
    for _ in range(3):
        model.train_on_batch(x, x)
    model_only = []
    for _ in range(10):
        start = time.perf_counter()
        model.train_on_batch(x, x)
        model_only.append(time.perf_counter() - start)
    history = os.path.join(folder, "history.csv")
    return {"cli_step_s": statistics.median(timer.times[1:] or timer.times),
            "model_only_step_s": statistics.median(model_only), "history": os.path.exists(history)}


def _run(backend, what, small, folder):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", what, folder] + (["--small"] if small else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def _gpu_backends():
    from medresae.bench.speed import installed_backends

    backends = installed_backends()
    if "tensorflow" in backends:
        code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        if out.stdout.strip() in ("", "0"):
            backends.remove("tensorflow")  # a CPU-only TensorFlow would time the CPU
    return backends or installed_backends()


def _table(speed, extra):
    from medresae.bench.speed import row_label

    rows = {r["name"]: r for r in speed["rows"]}
    refs = [r["train"]["train_step_s"] for name, r in rows.items()
            if name.startswith("torch/") and "+" not in name and "train_step_s" in r.get("train", {})]
    best = min(refs) if refs else None
    lines = ["| what | device | train step (s) | x best plain torch | first step (s) | peak device MB | "
             "inference voxels/s | goal |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        train, infer = r.get("train", {}), r.get("infer", {})
        if "error" in train or "error" in infer:
            lines.append(f"| {name} | | error: {train.get('error') or infer.get('error')} | | | | | |")
            continue
        ratio = train["train_step_s"] / best if best else None
        goal = ""
        if name in ("keras/torch", "keras/torch+mixed") and ratio:
            goal = f"<= 1.2x: {'met' if ratio <= 1.2 else 'missed'}"
        elif name.startswith("keras/jax") and ratio:
            goal = f"<= 1.5x: {'met' if ratio <= 1.5 else 'missed'}"
        label = row_label(r)
        peak = "/".join("-" if v is None else f"{v:.0f}" for v in (train.get("peak_device_mb"),
                                                                  infer.get("peak_device_mb")))
        lines.append(f"| {label} | {train.get('device', '')} | {train['train_step_s']:.3f} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} | {train['first_step_s']:.1f} | {peak} | "
                     f"{infer['infer_voxels_per_s']:.3g} | {goal} |")
    for backend, figures in extra.items():
        d, loader = figures["denoise"], figures["loader"]
        if "error" in d:
            lines.append(f"| denoise, keras/{backend} | | error: {d['error']} | | | | | |")
        else:
            size = "x".join(map(str, speed["gpu_check"]["denoise_volume"]))
            lines.append(f"| denoise {size}, brain-mr, keras/{backend} | | {d['denoise_s']:.1f} s | | | | | "
                         f"<= 5 s: {'met' if d['denoise_s'] <= 5 else 'missed'} |")
        if "error" in loader:
            lines.append(f"| train from files, keras/{backend} | | error: {loader['error']} | | | | | |")
        else:
            ratio = loader["cli_step_s"] / loader["model_only_step_s"]
            lines.append(f"| train from files / from memory, keras/{backend} | | {loader['cli_step_s']:.3f} / "
                         f"{loader['model_only_step_s']:.3f} | {ratio:.2f} (x model only) | | | | "
                         f"<= 1.2x: {'met' if ratio <= 1.2 else 'missed'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--small", action="store_true", help="CPU-sized (to try the script)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = SIZES[args.small]
    if args.worker:
        result = _worker_denoise(sizes) if args.worker == "denoise" else _worker_loader(sizes, args.out)
        print(json.dumps(result))
        return 0
    from medresae.bench.speed import run_speed_benchmark

    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    backends = _gpu_backends()
    speed = run_speed_benchmark(patch=sizes["patch"], batch_size=sizes["batch"], steps=sizes["steps"],
                                warmup=sizes["warmup"], volume=sizes["volume"], backends=backends, mixed=True,
                                progress=lambda line: print(line, flush=True))
    speed["gpu_check"] = dict(sizes, backends=backends)
    extra = {}
    for backend in backends:
        print(f"denoise and loader, keras/{backend} ...", flush=True)
        extra[backend] = {"denoise": _run(backend, "denoise", args.small, args.out),
                          "loader": _run(backend, "loader", args.small, os.path.join(args.out, f"run-{backend}"))}
    table = _table(speed, extra)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump({"speed": speed, "extra": extra}, f, indent=1, default=str)
    print()
    print(table)
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
