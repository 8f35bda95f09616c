"""MGH/MGZ, NRRD and MetaImage: geometry kept exactly through reads, writes and conversions.

Geometry is checked against an independent conversion: SimpleITK (ITK's own
LPS readers and writers) turning the same files into NIfTI that nibabel reads.
"""

import os
import subprocess
import sys

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from test_io import AFFINE, assert_one_line, int16_volume, write_nifti

from medresae.errors import InputFileError
from medresae.io import Volume, is_volume_path, list_volumes, load_volume, save_volume

SINGLE_FILE = [".mgz", ".mgh", ".nrrd", ".mha"]
# MGH stores its geometry (voxel sizes, direction cosines, centre) in float32.
ATOL = {".mgz": 1e-4, ".mgh": 1e-4, ".nrrd": 1e-9, ".mha": 1e-9}


@pytest.fixture
def source(tmp_path):
    # Non-square in X/Y and an oblique, axis-swapped affine: an axis mix-up or a sign error shows.
    return load_volume(write_nifti(tmp_path / "scan.nii.gz", int16_volume((12, 10, 6))))


@pytest.mark.parametrize("suffix", SINGLE_FILE)
def test_conversion_from_nifti_keeps_geometry_and_data(source, tmp_path, suffix):
    path = save_volume(tmp_path / f"scan{suffix}", source.array, like=source, dtype="input")
    read = load_volume(path)
    np.testing.assert_allclose(read.affine, source.affine, rtol=0, atol=ATOL[suffix])
    np.testing.assert_array_equal(read.array, source.array)
    assert read.orientation == source.orientation == ("P", "L", "S")
    assert read.source_dtype.newbyteorder("=") == np.int16
    # Within one format, a second round trip changes nothing.
    again = load_volume(save_volume(tmp_path / f"again{suffix}", read.array, like=read, dtype="input"))
    np.testing.assert_array_equal(again.affine, read.affine)
    np.testing.assert_array_equal(again.array, read.array)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_itk_reads_our_files_in_the_same_place(source, tmp_path, suffix):
    path = save_volume(tmp_path / f"scan{suffix}", source.array, like=source)
    converted = str(tmp_path / "itk.nii.gz")
    sitk.WriteImage(sitk.ReadImage(path), converted)
    reference = nib.load(converted)
    np.testing.assert_allclose(reference.affine, source.affine, rtol=0, atol=1e-4)  # NIfTI qform: float32
    np.testing.assert_array_equal(reference.get_fdata()[..., None], source.array)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_we_read_itk_files_in_the_same_place(source, tmp_path, suffix):
    path = str(tmp_path / f"itk{suffix}")
    sitk.WriteImage(sitk.ReadImage(source.path), path)  # ITK: NIfTI (RAS) -> its own LPS geometry
    read = load_volume(path)
    np.testing.assert_allclose(read.affine, source.affine, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(read.array, source.array)


def test_we_read_nibabel_mgh_files(tmp_path):
    data = int16_volume((8, 7, 5))
    path = str(tmp_path / "brain.mgz")
    nib.save(nib.MGHImage(data, AFFINE), path)
    read = load_volume(path)
    np.testing.assert_allclose(read.affine, AFFINE, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(read.array[..., 0], data)


def test_nrrd_spaces_channels_and_detached_header(tmp_path):
    data = np.arange(3 * 6 * 5 * 4, dtype=np.float32).reshape(3, 6, 5, 4)  # channels on axis 0
    directions = np.array([[np.nan] * 3, [0.0, 0.9, 0.0], [-1.1, 0.0, 0.0], [0.0, 0.0, 2.5]])
    header = {"space": "right-anterior-superior", "space directions": directions,
              "space origin": np.array([10.0, -20.0, 30.0]), "kinds": ["vector", "domain", "domain", "domain"]}
    path = str(tmp_path / "ras.nhdr")
    nrrd.write(path, data, header, index_order="F", detached_header=True)
    read = load_volume(path)
    assert read.array.shape == (6, 5, 4, 3)
    np.testing.assert_array_equal(read.array, np.moveaxis(data, 0, -1))
    expected = np.array([[0, -1.1, 0, 10.0], [0.9, 0, 0, -20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(read.affine, expected)
    # The same geometry in LPS: the first two world axes flip, the volume stays where it is.
    lps = dict(header, space="left-posterior-superior", **{
        "space directions": directions * np.array([-1, -1, 1]),
        "space origin": np.array([-10.0, 20.0, 30.0])})
    nrrd.write(str(tmp_path / "lps.nrrd"), data, lps, index_order="F")
    np.testing.assert_array_equal(load_volume(tmp_path / "lps.nrrd").affine, expected)
    # Written back in the space it came from; channels stay last in our arrays.
    out = save_volume(tmp_path / "out.nrrd", read.array, like=read)
    assert nrrd.read_header(out)["space"] == "right-anterior-superior"
    again = load_volume(out)
    np.testing.assert_array_equal(again.affine, expected)
    np.testing.assert_array_equal(again.array, read.array)


def test_list_volumes_and_suffixes(tmp_path):
    for name in ("a.nii.gz", "b.mgz", "c.nrrd", "d.mha", "e.mhd", "notes.txt", ".hidden.nii"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for p in list_volumes(tmp_path)] == ["a.nii.gz", "b.mgz", "c.nrrd", "d.mha",
                                                                        "e.mhd"]
    assert is_volume_path("X.NRRD") and not is_volume_path("scan.raw")


@pytest.mark.parametrize("name, words", [("out.nhdr", "write .nrrd instead"), ("out.mhd", "write .mha instead")])
def test_detached_headers_are_not_written(source, tmp_path, name, words):
    with pytest.raises(InputFileError, match=words) as err:
        save_volume(tmp_path / name, source.array, like=source)
    assert_one_line(err, name)
    assert not os.path.exists(tmp_path / name)


@pytest.mark.parametrize("suffix, what", [(".mha", "MetaImage"), (".nrrd", "NRRD"), (".mgz", "MGH")])
def test_sheared_affine_is_refused_where_the_format_cannot_store_it(tmp_path, suffix, what):
    sheared = np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    volume = Volume(np.ones((4, 4, 4, 1), "float32"), sheared)
    with pytest.raises(InputFileError, match=f"shear.*which {what} cannot store; write .nii") as err:
        save_volume(tmp_path / f"out{suffix}", volume.array, like=volume)
    assert_one_line(err, f"out{suffix}")
    assert os.listdir(tmp_path) == []


def test_mgh_dtypes_and_bad_files(source, tmp_path):
    with pytest.raises(InputFileError, match="MGH stores uint8, int16, int32 or float32") as err:
        save_volume(tmp_path / "out.mgz", source.array, like=source, dtype="float64")
    assert_one_line(err, "out.mgz")
    assert os.listdir(tmp_path) == ["scan.nii.gz"]
    for name in ("bad.mgz", "bad.nrrd", "bad.mha"):
        (tmp_path / name).write_bytes(b"not an image at all")
        with pytest.raises(InputFileError, match="not a readable") as err:
            load_volume(tmp_path / name)
        assert_one_line(err, name)


def test_unknown_nrrd_space_is_refused(tmp_path):
    path = str(tmp_path / "odd.nrrd")
    nrrd.write(path, np.ones((3, 3, 3), np.float32),
               {"space": "left-posterior-superior", "space directions": np.eye(3)}, index_order="F")
    text = open(path, "rb").read()
    assert b"space: left-posterior-superior" in text
    open(path, "wb").write(text.replace(b"space: left-posterior-superior", b"space: 3D-left-handed"))
    with pytest.raises(InputFileError, match="is not a 3D anatomical space") as err:
        load_volume(path)
    assert_one_line(err, "odd.nrrd")


def test_cli_simulate_reads_and_writes_other_formats(source, tmp_path):
    mgz = save_volume(tmp_path / "scan.mgz", source.array, like=source)
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"))
    run = [sys.executable, "-m", "medresae", "simulate", mgz, "-o", str(tmp_path / "noisy.nrrd"),
           "--noise", "gaussian:0.05", "--seed", "0"]
    result = subprocess.run(run, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    noisy = load_volume(tmp_path / "noisy.nrrd")
    np.testing.assert_allclose(noisy.affine, source.affine, rtol=0, atol=1e-4)
    assert not np.array_equal(noisy.array, source.array)
