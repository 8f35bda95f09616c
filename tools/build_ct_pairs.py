#!/usr/bin/env python3
"""Low-dose (noisy, clean) CT training pairs from the corpus's CT training volumes.

Low-dose CT noise depends on each ray's path through the whole slice, so it
is simulated on whole axial slices (`medresae simulate --noise ct:PHOTONS`,
Poisson counts on the sinogram and a filtered back-projection of the noise)
before any patch is cut. Each volume gets three dose levels, one high, one
middle and one low, rotated over the volumes so that six levels from 5e3 to
2e5 photons per ray are covered; every (volume, level) has its own seed.

Writes OUT/noisy/NAME_PHOTONS.nii.gz and OUT/clean/NAME_PHOTONS.nii.gz (a
hard link, or a copy, of the clean volume: `medresae train --pairs` matches
pairs by file name). Files already there are kept, so an interrupted run
continues where it stopped.

Usage:
    python tools/build_ct_pairs.py CORPUS/ct/train OUT [--jobs 2]
"""

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HIGH = ("2e5", "1e5")
MIDDLE = ("5e4", "2.5e4")
LOW = ("1.2e4", "5e3")


def levels(index):
    """The three dose levels of the `index`-th volume (in name order)."""
    return HIGH[index % 2], MIDDLE[(index + 1) % 2], LOW[index % 2]


def _link_or_copy(src, dst):
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_dir", type=Path, help="the corpus's ct/train folder (NIfTI in HU)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--jobs", type=int, default=2, help="simulations run side by side (default 2)")
    args = parser.parse_args(argv)

    volumes = sorted(args.train_dir.glob("*.nii.gz"))
    if not volumes:
        parser.error(f"no .nii.gz volumes in {args.train_dir}")
    (args.out / "noisy").mkdir(parents=True, exist_ok=True)
    (args.out / "clean").mkdir(parents=True, exist_ok=True)

    jobs = []
    for index, volume in enumerate(volumes):
        name = volume.name[: -len(".nii.gz")]
        for k, photons in enumerate(levels(index)):
            noisy = args.out / "noisy" / f"{name}_{photons}.nii.gz"
            _link_or_copy(volume, args.out / "clean" / noisy.name)
            if not noisy.exists():
                jobs.append((volume, noisy, photons, 100 * index + k))

    def run(job):
        volume, noisy, photons, seed = job
        cmd = [sys.executable, "-m", "medresae", "simulate", str(volume), "-o", str(noisy),
               "--noise", f"ct:{photons}", "--seed", str(seed)]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        status = "ok" if done.returncode == 0 else f"FAILED ({done.returncode}): {done.stdout.strip()[-300:]}"
        print(f"{noisy.name}: {status}", flush=True)
        return done.returncode

    print(f"{len(jobs)} simulations to run ({len(volumes)} volumes x 3 levels, "
          f"{3 * len(volumes) - len(jobs)} already there)", flush=True)
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        codes = list(pool.map(run, jobs))
    return 1 if any(codes) else 0


if __name__ == "__main__":
    sys.exit(main())
