"""Bad inputs: each fails with one line that names the problem, and nothing is written or touched.

Most cases run `medresae_cli.main` in this process; the ones that need a
fresh process (a broken backend, a full disk, Ctrl-C, two writers) run the
real command in subprocesses. A tiny untrained ResUNet stands in for a
trained model: with its zero-initialised head it is the identity.
"""

import fnmatch
import os
import shutil
import signal
import subprocess
import sys

import keras
import nibabel as nib
import numpy as np
import pytest
from conftest import BACKEND
from helpers import REPO

import medresae_cli
from medresae.errors import ClippedValuesWarning, InputFileError
from medresae.inference import denoise
from medresae.io import load_volume, save_volume
from medresae.models import ResUNet

MAIN = "import sys, medresae_cli; sys.exit(medresae_cli.main(sys.argv[1:]))"
CLI = [sys.executable, "-c", MAIN]
# Set up in the child itself, not in a preexec_fn (forking a multithreaded JAX or
# TensorFlow process and running Python before exec can deadlock).
FULL_DISK = (  # a write past 64 KiB fails with EFBIG (SIGXFSZ ignored) as on a full disk
    "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY)); "
)
# A test run started in the background (`cmd &`) hands its children SIGINT ignored, and
# Python keeps an ignored SIGINT ignored: restore Python's handler, as a terminal would.
CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
ENV = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="2")
AFFINE = np.array([[0.9, 0.1, 0.0, -90.0], [-0.1, 0.9, 0.0, 60.0], [0.0, 0.0, 3.0, -40.0], [0, 0, 0, 1]])


def _nifti(path, array, dtype=None):
    image = nib.Nifti1Image(array, AFFINE)
    if dtype is not None:
        image.header.set_data_dtype(dtype)
    nib.save(image, str(path))
    return str(path)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Input files and models shared by every case (never to be modified)."""
    d = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    k = {"dir": d}
    k["good"] = _nifti(d / "good.nii.gz", rng.uniform(10, 100, (16, 16, 4)).astype("float32"))
    raw = open(k["good"], "rb").read()
    (d / "truncated.nii.gz").write_bytes(raw[: len(raw) // 2])
    (d / "text.nii.gz").write_text("this is not an image\n")
    (d / "notes.txt").write_text("notes\n")
    _nifti(d / "five_d.nii.gz", rng.uniform(size=(8, 8, 4, 2, 3)).astype("float32"))
    nan = rng.uniform(size=(16, 16, 4)).astype("float32")
    nan[1, 2, 3] = np.nan
    _nifti(d / "nan.nii.gz", nan)
    inf = rng.uniform(size=(16, 16, 4)).astype("float32")
    inf[0, 0, 0], inf[5, 5, 1] = np.inf, -np.inf
    _nifti(d / "inf.nii.gz", inf)
    _nifti(d / "zeros.nii.gz", np.zeros((16, 16, 4), "float32"))
    _nifti(d / "thin.nii.gz", rng.uniform(size=(1, 16, 4)).astype("float32"))
    _nifti(d / "two_channels.nii.gz", rng.uniform(size=(16, 16, 4, 2)).astype("float32"))
    (d / "folder").mkdir()
    _nifti(d / "folder" / "a.nii.gz", rng.uniform(size=(8, 8, 2)).astype("float32"))

    k["model"] = str(d / "model.keras")
    ResUNet(spatial_dims=3, filters=(4, 8), n_blocks=1, strides=(2, 2, 1)).save(k["model"])
    keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)]).save(str(d / "dense.keras"))
    # An image-to-image model of any Keras layers is fine: y = 1.5 x + 0.25 in model units.
    scale = keras.Sequential([keras.Input((None, None, None, 1)), keras.layers.Rescaling(1.5, offset=0.25)])
    scale.save(str(d / "scale.keras"))
    (d / "garbage.keras").write_bytes(b"PK\x03\x04 not a zip archive")
    # Models that are wrong in ways only running them shows: an output smaller than the
    # input, an infinite output, and one that Keras refuses to load (Python code).
    crop = keras.Sequential([keras.Input((None, None, None, 1)), keras.layers.Cropping3D(((1, 1), (1, 1), (0, 0)))])
    crop.save(str(d / "crop.keras"))
    huge = keras.Sequential([keras.Input((None, None, None, 1)), keras.layers.Rescaling(1e30),
                             keras.layers.Rescaling(1e30)])
    huge.save(str(d / "infinite.keras"))
    lam = keras.Sequential([keras.Input((None, None, None, 1)), keras.layers.Lambda(lambda t: t * 2.0)])
    lam.save(str(d / "lambda.keras"))
    # A 3x3x3 mean filter: what a model does to a corrupt voxel's neighbours.
    mean = keras.Sequential([keras.Input((None, None, None, 1)),
                             keras.layers.Conv3D(1, 3, padding="same", use_bias=False,
                                                 kernel_initializer=keras.initializers.Constant(1.0 / 27))])
    mean.save(str(d / "mean.keras"))
    # Finite float64 values that float32 cannot hold; an RGB colour image; an empty mask.
    big = rng.uniform(10, 100, (16, 16, 4))
    big[3, 3, 1] = 1e300
    _nifti(d / "float64_huge.nii.gz", big, dtype="float64")
    rgb = np.zeros((16, 16, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, AFFINE), str(d / "rgb.nii.gz"))
    _nifti(d / "empty_mask.nii.gz", np.zeros((16, 16, 4), "uint8"), dtype="uint8")
    (d / "existing.json").write_text("{}\n")
    (d / "a_file").write_text("not a folder\n")
    (d / "weights.txt").write_text("not a model\n")
    return k


def _snapshot(folder):
    """{relative path: (bytes, mtime_ns)} of every file under `folder`."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, folder)] = (open(path, "rb").read(), os.stat(path).st_mtime_ns)
    return files


def _temp_files(*folders):
    return [os.path.join(root, n) for f in folders for root, _, names in os.walk(f)
            for n in names if fnmatch.fnmatch(n, ".*.tmp*")]


# The JAX-on-CPU speed advice (medresae.performance) is a line of its own, not part of a message.
SLOW_BACKEND_ADVICE = "medresae: warning: Keras on JAX runs 3D convolutions"


def _one_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith(SLOW_BACKEND_ADVICE)]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


def _medresae_line(stderr):
    """The one `medresae: ...` line of a child's stderr (backend libraries may log more)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines()
             if line.startswith("medresae:") and not line.startswith(SLOW_BACKEND_ADVICE)]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def _error(argv, capsys):
    code = medresae_cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err[-3000:]
    line = _one_line(err)
    assert line.startswith("medresae: error: "), line
    return line


def _run(argv, env=None, prelude=""):
    return subprocess.run([sys.executable, "-c", prelude + MAIN, *map(str, argv)], env=dict(ENV, **(env or {})),
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def _dn(k, name, out, *extra, model=None):
    """`denoise DIR/name -o out --model MODEL ...` (`name` may be an absolute path)."""
    return ["denoise", k["dir"] / name, "-o", out, "--model", model or k["model"], *extra]


# Each case: id, argv from (kit, output folder), substrings of the message. The message
# must also name the file or argument at fault (the first substring, in most cases).
CASES = [
    ("missing input", lambda k, o: _dn(k, "nope.nii.gz", o / "x.nii.gz"),
     ["nope.nii.gz: no such file or folder"]),
    ("not an image", lambda k, o: _dn(k, "text.nii.gz", o / "x.nii.gz"),
     ["text.nii.gz: not a readable NIfTI image"]),
    ("not a NIfTI file name", lambda k, o: _dn(k, "notes.txt", o / "x.nii.gz"),
     ["notes.txt: unsupported file type", ".nii.gz"]),
    ("truncated .nii.gz", lambda k, o: _dn(k, "truncated.nii.gz", o / "x.nii.gz"),
     ["truncated.nii.gz: the image data is truncated or corrupt"]),
    ("5-D image", lambda k, o: _dn(k, "five_d.nii.gz", o / "x.nii.gz"),
     ["five_d.nii.gz: 5-D image (shape (8, 8, 4, 2, 3))"]),
    ("NaN voxel", lambda k, o: _dn(k, "nan.nii.gz", o / "x.nii.gz"),
     ["nan.nii.gz: 1 of 1024 voxels are NaN or infinite (1 NaN, 0 inf)"]),
    ("inf voxels", lambda k, o: _dn(k, "inf.nii.gz", o / "x.nii.gz"),
     ["inf.nii.gz: 2 of 1024 voxels are NaN or infinite (0 NaN, 2 inf)"]),
    ("all-zero volume", lambda k, o: _dn(k, "zeros.nii.gz", o / "x.nii.gz"),
     ["zeros.nii.gz: the volume is empty (all voxels are 0)"]),
    ("volume smaller than the spatial divisor", lambda k, o: _dn(k, "thin.nii.gz", o / "x.nii.gz"),
     ["thin.nii.gz: `volume` has 1 voxel(s) on axis 0", "spatial_divisor (2, 2, 1)"]),
    ("tile smaller than the spatial divisor", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--tile", "1,1,1"),
     ["--tile 1,1,1: ", "multiple of the model's spatial_divisor (2, 2, 1)", "e.g. tile=(2, 2, 1)"]),
    ("tile not a multiple of the divisor",
     lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--tile", "3,3,1"), ["--tile 3,3,1: ", "tile=(4, 4, 1)"]),
    ("wrong channel count", lambda k, o: _dn(k, "two_channels.nii.gz", o / "x.nii.gz"),
     ["two_channels.nii.gz: `volume` has 2 channel(s) but the model expects 1"]),
    ("missing model", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", model=k["dir"] / "nope.keras"),
     ["nope.keras: no such model file"]),
    ("model without .keras suffix",
     lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", model=k["dir"] / "weights.txt"),
     ["weights.txt: not a .keras model file"]),
    ("not a Keras file", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", model=k["dir"] / "garbage.keras"),
     ["garbage.keras: not a Keras model file", "zip archive"]),
    ("foreign Keras model (Dense)",
     lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", model=k["dir"] / "dense.keras"),
     ["dense.keras: `model` must be an image-to-image model", "its input shape is (None, 10)"]),
    ("output in a missing folder", lambda k, o: _dn(k, "good.nii.gz", o / "missing" / "x.nii.gz"),
     ["x.nii.gz: folder ", "missing does not exist; create it first"]),
    ("output equals input", lambda k, o: _dn(k, "good.nii.gz", k["good"]),
     ["good.nii.gz: would overwrite the input"]),
    ("output exists", lambda k, o: _dn(k, "good.nii.gz", o / "old.nii.gz"),
     ["old.nii.gz: file exists", "--overwrite"]),
    ("output not NIfTI", lambda k, o: _dn(k, "good.nii.gz", o / "x.txt"),
     ["x.txt: unsupported output type"]),
    ("output dtype not real", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--dtype", "complex64"),
     ["x.nii.gz: `dtype` must be", "dtype='complex64'"]),
    ("overlap out of range", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--overlap", "1"),
     ["argument --overlap: expected a number from 0 to below 1; got '1'"]),
    ("folder in, file out", lambda k, o: _dn(k, "folder", o / "x.nii.gz"),
     ["x.nii.gz: IN is a folder of volume files, so OUT must be a folder"]),
    ("folder in, bad model: no output folder made",
     lambda k, o: _dn(k, "folder", o / "new", model=k["dir"] / "dense.keras"), ["dense.keras: "]),
    ("unknown preset", lambda k, o: ["denoise", k["good"], "-o", o / "x.nii.gz", "--preset", "mri-brain"],
     ["--preset 'mri-brain': unknown preset; choose one of brain-mr, ct"]),
    ("unknown noise spec", lambda k, o: ["simulate", k["good"], "-o", o / "x.nii.gz", "--noise", "foo:1"],
     ["--noise 'foo:1': ", "unknown model 'foo'", "rician:0.05"]),
    ("unknown noise spec (train)",
     lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", o / "run", "--noise", "foo:1"],
     ["'foo:1'", "unknown model 'foo'"]),
    ("bad noise level", lambda k, o: ["simulate", k["good"], "-o", o / "x.nii.gz", "--noise", "rician:-1"],
     ["--noise 'rician:-1': ", "bad level '-1'"]),
    # --json outputs: checked before any scoring, never an input, never replaced unasked.
    ("evaluate --json is the reference",
     lambda k, o: ["evaluate", "--reference", k["good"], k["good"], "--json", k["good"]],
     ["good.nii.gz: would overwrite the input", "write to a different file"]),
    ("evaluate --json exists",
     lambda k, o: ["evaluate", "--reference", k["good"], k["good"], "--json", k["dir"] / "existing.json"],
     ["existing.json: file exists", "--overwrite"]),
    ("bench data --json exists", lambda k, o: ["bench", "data", "--json", k["dir"] / "existing.json"],
     ["existing.json: file exists", "--overwrite"]),
    ("output name too long", lambda k, o: _dn(k, "good.nii.gz", o / ("n" * 250 + ".nii.gz")),
     ["the file name is 257 bytes long, more than this file system's 255; choose a shorter name"]),
    # Messages that name the real culprit.
    ("float64 values beyond float32", lambda k, o: _dn(k, "float64_huge.nii.gz", o / "x.nii.gz"),
     ["float64_huge.nii.gz: 1 of 1024 voxels hold values beyond the float32 range", "up to 1e+300",
      "rescale the image first"]),
    ("RGB image", lambda k, o: _dn(k, "rgb.nii.gz", o / "x.nii.gz"),
     ["rgb.nii.gz: a colour (RGB) image; medresae denoises greyscale scans"]),
    ("model output smaller than its input", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz",
                                                             model=k["dir"] / "crop.keras"),
     ["crop.keras: the model must return an image of the shape it is given"]),
    ("model output infinite (--no-guard)", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--no-guard",
                                                            model=k["dir"] / "infinite.keras"),
     ["infinite.keras: the model returned ", " NaN or infinite voxels for ", "nothing was written"]),
    ("Lambda-layer model", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", model=k["dir"] / "lambda.keras"),
     ["lambda.keras: cannot load this Keras model: it holds Python code (a Lambda layer)", "safe_mode=False"]),
    ("simulate --seed -1", lambda k, o: ["simulate", k["good"], "-o", o / "x.nii.gz", "--noise", "rician:0.05",
                                         "--seed", "-1"],
     ["argument --seed: expected an integer >= 0; got '-1'", "medresae simulate --help"]),
    ("--tile with 4 values", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--tile", "8,8,4,2"),
     ["argument --tile: expected positive ints like 64,64,8; got '8,8,4,2'"]),
    ("--tile 0", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--tile", "0"),
     ["argument --tile: expected positive ints like 64,64,8; got '0'"]),
    ("--noise-sigma inf", lambda k, o: _dn(k, "good.nii.gz", o / "x.nii.gz", "--adapt", "--noise-sigma", "inf"),
     ["argument --noise-sigma: expected a finite number > 0; got 'inf'"]),
    ("train --validation 1.5",
     lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", o / "run", "--validation", "1.5"],
     ["argument --validation: expected a number from 0 to below 1; got '1.5'"]),
    ("train --lr 0", lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", o / "run", "--lr", "0"],
     ["argument --lr: expected a finite number > 0; got '0'"]),
    ("train --steps-per-epoch 0",
     lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", o / "run", "--steps-per-epoch", "0"],
     ["argument --steps-per-epoch: expected a positive integer; got '0'"]),
    ("train --loss-weighting noise without a target",
     lambda k, o: ["train", "--noisy", k["dir"] / "folder", "--out", o / "run", "--loss-weighting", "noise"],
     ["--loss-weighting noise: measures each patch's noise against its target", "use --loss-weighting none"]),
    ("train --workers many", lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", o / "run", "--workers",
                                           "many"],
     ["argument --workers: expected a positive integer or auto; got 'many'"]),
    ("train --n2v-per-channel without --noisy",
     lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", o / "run", "--n2v-per-channel"],
     ["--n2v-per-channel applies to --noisy DIR with --mode n2v or n2v2"]),
    ("train --out is a file", lambda k, o: ["train", "--clean", k["dir"] / "folder", "--out", k["dir"] / "a_file"],
     ["--out ", "a_file: is a file, but training writes a run folder"]),
    ("demo --out is a file", lambda k, o: ["demo", "--out", k["dir"] / "a_file"],
     ["--out ", "a_file: is a file; give a folder for the demo's outputs"]),
    ("evaluate empty --mask",
     lambda k, o: ["evaluate", "--reference", k["good"], k["good"], "--mask", k["dir"] / "empty_mask.nii.gz"],
     ["--mask ", "empty_mask.nii.gz: the mask is empty (no non-zero voxel)"]),
    # Noise specs that would silently give nonsense or run for days.
    ("ct photons below 100", lambda k, o: ["simulate", k["good"], "-o", o / "x.nii.gz", "--noise", "ct:1e-6"],
     ["--noise 'ct:1e-6': ", "must be at least 100"]),
    ("chi with 1e8 coils",
     lambda k, o: ["simulate", k["good"], "-o", o / "x.nii.gz", "--noise", "chi:0.05:coils=100000000"],
     ["--noise 'chi:0.05:coils=100000000': ", "`coils` must be at most 128"]),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_with_one_line_and_touches_nothing(kit, tmp_path, capsys, argv, expected):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.nii.gz").write_bytes(b"an existing output")
    before, out_before = _snapshot(kit["dir"]), _snapshot(out)
    line = _error(argv(kit, out), capsys)
    for text in expected:
        assert text in line, line
    assert _snapshot(kit["dir"]) == before  # inputs: same bytes, same mtime, nothing added
    assert _snapshot(out) == out_before and sorted(os.listdir(out)) == ["old.nii.gz"]
    assert not _temp_files(kit["dir"], out)


def _writable(folder):
    try:
        open(folder / "probe", "w").close()
    except PermissionError:
        return False
    os.remove(folder / "probe")
    return True


def test_output_in_a_read_only_folder(kit, tmp_path, capsys):
    out = tmp_path / "read_only"
    out.mkdir()
    os.chmod(out, 0o555)
    immutable = False
    try:
        if _writable(out):
            # root ignores the mode bits; the immutable attribute stops root too, where the
            # file system and the container allow setting it.
            immutable = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(out)],
                                                                  capture_output=True).returncode == 0
            if not immutable or _writable(out):
                pytest.skip("cannot make a folder read-only for this user here")
        line = _error(_dn(kit, "good.nii.gz", out / "x.nii.gz"), capsys)
        assert "x.nii.gz: cannot write to folder" in line and "permission denied" in line, line
        assert os.listdir(out) == []
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(out)], capture_output=True)
        os.chmod(out, 0o755)


def test_immutable_output_file_is_named_as_a_file(kit, tmp_path, capsys):
    target = tmp_path / "x.nii.gz"
    target.write_bytes(b"an earlier output")
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode:
        pytest.skip("cannot make a file immutable here")
    try:
        line = _error(_dn(kit, "good.nii.gz", target, "--overwrite"), capsys)
        assert "x.nii.gz: cannot replace the existing file (permission denied" in line, line
        assert "folder" not in line, line
        assert sorted(os.listdir(tmp_path)) == ["x.nii.gz"]
    finally:
        subprocess.run(["chattr", "-i", str(target)], capture_output=True)


# ---------------------------------------------------------------- handled, not refused


@pytest.mark.parametrize("dtype, high", [("uint8", 255), ("int16", 32000)])
def test_dtype_input_clips_to_the_integer_range_with_one_line_warning(kit, tmp_path, capsys, dtype, high):
    # A demanding user expects --dtype input to keep the file's type: values the
    # type cannot hold are clipped (not wrapped around, not refused after the work),
    # and a warning says how many.
    values = np.random.default_rng(1).uniform(0, high, (16, 16, 4))
    src = _nifti(tmp_path / "in.nii.gz", values.astype(dtype), dtype=dtype)
    scale = kit["dir"] / "scale.keras"
    as_float, as_input = tmp_path / "float.nii.gz", tmp_path / "input.nii.gz"
    assert medresae_cli.main([str(a) for a in _dn(kit, src, as_float, model=scale)]) == 0
    capsys.readouterr()
    assert medresae_cli.main([str(a) for a in _dn(kit, src, as_input, "--dtype", "input", model=scale)]) == 0
    warning = _one_line(capsys.readouterr().err)
    info = np.iinfo(dtype)
    assert warning.startswith(f"medresae: warning: {as_input}: "), warning
    assert f"outside the range {info.min} to {info.max} that {dtype} can hold and were clipped" in warning
    assert "--dtype float32" in warning
    expected = np.clip(np.rint(nib.load(str(as_float)).get_fdata()), info.min, info.max)
    written = nib.load(str(as_input))
    assert written.get_data_dtype() == dtype
    n_clipped = int(np.count_nonzero(np.rint(nib.load(str(as_float)).get_fdata()) > info.max))
    assert n_clipped > 0 and f": {n_clipped} of 1024 voxels" in warning
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), expected.astype(dtype))


def test_save_volume_warns_when_it_clips(kit, tmp_path):
    volume = load_volume(_nifti(tmp_path / "u8.nii.gz", np.arange(64, dtype="uint8").reshape(4, 4, 4), "uint8"))
    array = volume.array.copy()
    array[0, 0, 0], array[1, 0, 0] = -3.0, 300.0
    with pytest.warns(ClippedValuesWarning, match=r"2 of 64 voxels .* range 0 to 255 that uint8"):
        save_volume(tmp_path / "out.nii.gz", array, like=volume, dtype="input")
    on_disk = np.asanyarray(nib.load(str(tmp_path / "out.nii.gz")).dataobj)
    assert on_disk[0, 0, 0] == 0 and on_disk[1, 0, 0] == 255


def test_dtype_input_keeps_the_scaling_of_a_scaled_integer_file(kit, tmp_path):
    # nibabel (and many scanners) store floats as int16 with scl_slope/scl_inter;
    # writing unscaled int16 would round 0.0-2.3 to 0, 1, 2.
    values = np.linspace(0.0, 2.3, 16 * 16 * 4).reshape(16, 16, 4).astype("float32")
    src = _nifti(tmp_path / "scaled.nii.gz", values, dtype="int16")
    slope = float(nib.load(src).dataobj.slope)
    assert slope < 1e-3
    out = tmp_path / "out.nii.gz"
    assert medresae_cli.main([str(a) for a in _dn(kit, src, out, "--dtype", "input")]) == 0
    written = nib.load(str(out))
    assert written.get_data_dtype() == np.int16
    assert float(written.dataobj.slope) == pytest.approx(slope)
    np.testing.assert_allclose(written.get_fdata(), values, atol=2 * slope + 1e-5 * 2.3)


def test_volume_smaller_than_the_receptive_field_is_denoised(kit, tmp_path, capsys):
    # Same padding handles a volume smaller than the model's receptive field (as it
    # handles any border); only a volume smaller than the spatial divisor is refused.
    values = np.random.default_rng(2).uniform(10, 100, (4, 2, 2)).astype("float32")
    src, out = _nifti(tmp_path / "tiny.nii.gz", values), tmp_path / "out.nii.gz"
    assert medresae_cli.main([str(a) for a in _dn(kit, src, out)]) == 0
    result = nib.load(str(out)).get_fdata()
    assert result.shape == values.shape
    np.testing.assert_allclose(result, values, atol=1e-4 * np.ptp(values))  # the identity model


def test_output_name_near_the_file_system_limit_is_written(kit, tmp_path, capsys):
    # 248 bytes is a legal name; the temporary name (which adds a pid and a random part) is
    # shortened to fit, and nothing but the output is left.
    target = tmp_path / ("n" * 241 + ".nii.gz")
    assert medresae_cli.main([str(a) for a in _dn(kit, "good.nii.gz", target)]) == 0
    assert os.listdir(tmp_path) == [target.name]


def test_evaluate_json_is_strict_json_when_an_image_equals_the_reference(kit, tmp_path, capsys):
    import json

    out = tmp_path / "scores.json"
    assert medresae_cli.main(["evaluate", "--reference", kit["good"], kit["good"], "--json", str(out)]) == 0
    text = out.read_text()
    assert "Infinity" not in text and "NaN" not in text
    scores = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert scores["scores"][kit["good"]]["psnr"] is None
    assert scores["scores"][kit["good"]]["ssim"] == pytest.approx(1.0)
    # --overwrite replaces it; without it the file is kept.
    assert medresae_cli.main(["evaluate", "--reference", kit["good"], kit["good"], "--json", str(out)]) == 2
    assert medresae_cli.main(["evaluate", "--reference", kit["good"], kit["good"], "--json", str(out),
                              "--overwrite"]) == 0


def test_a_corrupt_voxel_does_not_spread_into_its_neighbours(kit, tmp_path, capsys):
    values = np.random.default_rng(4).uniform(10, 100, (16, 16, 8)).astype("float32")
    values[8, 8, 4] = 1e30
    src, out = _nifti(tmp_path / "spike.nii.gz", values), tmp_path / "out.nii.gz"
    assert medresae_cli.main([str(a) for a in _dn(kit, src, out, "--no-guard",
                                                  model=kit["dir"] / "mean.keras")]) == 0
    warning = _one_line(capsys.readouterr().err)
    assert warning.startswith(f"medresae: warning: {src}: 1 of 2048 voxels lie far outside"), warning
    result = nib.load(str(out)).get_fdata()
    assert result[8, 8, 4] == pytest.approx(1e30, rel=1e-6)  # passed through unchanged
    neighbours = result[7:10, 7:10, 3:6].copy()
    neighbours[1, 1, 1] = 50.0
    assert 10.0 <= neighbours.min() and neighbours.max() <= 100.0


# ---------------------------------------------------------------- Python API


def test_python_api_errors_are_one_line(kit, tmp_path):
    dense = keras.saving.load_model(str(kit["dir"] / "dense.keras"))
    volume = np.ones((8, 8, 2, 1), "float32")
    cases = [
        (lambda: denoise(dense, volume, progress=False), "must be an image-to-image model"),
        (lambda: denoise(keras.saving.load_model(kit["model"]), np.ones((1, 8, 2, 1), "float32"), progress=False),
         "1 voxel(s) on axis 0"),
        (lambda: load_volume(kit["dir"] / "truncated.nii.gz"), "truncated or corrupt"),
        (lambda: save_volume(tmp_path / "missing" / "x.nii.gz", volume), "does not exist; create it first"),
    ]
    for call, text in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert text in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert isinstance(err.value, InputFileError)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- in a fresh process


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_backend_that_cannot_be_imported(tmp_path, how):
    fake = tmp_path / "fake" / "jax"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named jaxlib (simulated)')\n")
    env = {"PYTHONPATH": str(tmp_path / "fake")}
    if how == "flag":
        result = _run(["--backend", "jax", "info"], env=env)
    else:
        result = _run(["info"], env={**env, "KERAS_BACKEND": "jax"})
    assert result.returncode == 2, result.stderr[-3000:]
    line = _medresae_line(result.stderr)
    where = "--backend jax" if how == "flag" else "KERAS_BACKEND=jax"
    assert line.startswith(f"medresae: error: {where}: the jax package cannot be imported"), line
    assert "jaxlib" in line and "pip install 'medresae[jax]'" in line, line


def test_disk_full_during_the_write_leaves_nothing(kit, tmp_path):
    src = _nifti(tmp_path / "in.nii.gz", np.random.default_rng(3).uniform(size=(32, 32, 32)).astype("float32"))
    out = tmp_path / "out"
    out.mkdir()
    result = _run(_dn(kit, src, out / "x.nii.gz"), prelude=FULL_DISK)
    assert result.returncode == 2, result.stderr[-3000:]
    line = _medresae_line(result.stderr)
    assert line.startswith(f"medresae: error: {out / 'x.nii.gz'}: could not write the file"), line
    assert "File too large" in line and "free disk space" in line, line
    assert os.listdir(out) == []


def _signal_mid_denoise(kit, tmp_path, command, signum):
    """Starts a long `denoise` with `command` (the argv before the subcommand), sends `signum`
    once it is denoising; returns (process, stderr, output folder)."""
    big = _nifti(tmp_path / "big.nii.gz", np.random.default_rng(0).uniform(size=(96, 96, 32)).astype("float32"))
    out = tmp_path / "out"
    out.mkdir()
    argv = _dn(kit, big, out / "x.nii.gz", "--tta", "--overlap", "0.75", "--tile", "16,16,4", "--batch-size", "1")
    proc = subprocess.Popen([*command, *map(str, argv)], env=ENV, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("denoising"):
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    return proc, err, out


def test_ctrl_c_during_denoise_writes_nothing(kit, tmp_path):
    proc, err, out = _signal_mid_denoise(kit, tmp_path, [sys.executable, "-c", CTRL_C + MAIN], signal.SIGINT)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in _medresae_line(err)
    assert os.listdir(out) == []


def test_two_processes_writing_the_same_output(kit, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "x.nii.gz"
    # Both start together; each checks OUT first, so the loser fails either then or at the
    # final rename (a hard link, which refuses to replace the winner's file).
    procs = [subprocess.Popen([*CLI, *map(str, _dn(kit, "good.nii.gz", target))], env=ENV, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], (codes, errors)
    line = _medresae_line(errors[codes.index(2)])
    assert line.startswith(f"medresae: error: {target}: file exists"), line
    assert os.listdir(out) == ["x.nii.gz"]
    written, source = nib.load(str(target)), nib.load(kit["good"])
    assert written.shape == source.shape
    np.testing.assert_allclose(written.get_fdata(), source.get_fdata(), rtol=1e-4)  # the identity model


def test_sigterm_during_denoise_cleans_up_and_exits_143(kit, tmp_path):
    proc, err, out = _signal_mid_denoise(kit, tmp_path, CLI, signal.SIGTERM)
    assert proc.returncode == 143, err[-3000:]
    assert _medresae_line(err) == "medresae: terminated (SIGTERM); nothing was half-written"
    assert os.listdir(out) == []


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(kit, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # A temporary of a writer that was SIGKILLed (its pid is gone), one of a writer
    # that still runs (this test), and a stranger's file of the same pattern.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".x.nii.gz.{dead.pid}-0123abcd.tmp.nii.gz"
    live = out / f".x.nii.gz.{os.getpid()}-0123abcd.tmp.nii.gz"
    other = out / f".y.nii.gz.{dead.pid}-0123abcd.tmp.nii.gz"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    result = _run(_dn(kit, "good.nii.gz", out / "x.nii.gz"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out)) == sorted(["x.nii.gz", live.name, other.name])


@pytest.mark.parametrize("argv", [["--help"], ["denoise", "--help"], ["train", "--help"], ["bench", "speed", "-h"],
                                  ["denoise", "--tile", "0"]])
def test_help_and_argument_errors_import_no_backend(argv):
    code = ("import sys, medresae_cli; code = medresae_cli.main(sys.argv[1:]); "
            "loaded = [m for m in ('keras', 'tensorflow', 'jax', 'torch', 'medresae') if m in sys.modules]; "
            "print('LOADED', loaded); sys.exit(code)")
    env = {k: v for k, v in ENV.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert "LOADED []" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    if argv[-1] == "0":
        assert result.returncode == 2
        assert _medresae_line(result.stderr).startswith("medresae: error: argument --tile: ")
    else:
        assert result.returncode == 0 and "usage: medresae" in result.stdout
