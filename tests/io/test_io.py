"""medresae.io on real files: NIfTI through nibabel, DICOM through pydicom + MONAI."""

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medresae.errors import ClippedValuesWarning, InputFileError, InputFileNotFoundError, OutputExistsError
from medresae.io import Volume, is_nifti_path, list_nifti, load_volume, save_volume

ZOOMS = (0.9, 1.1, 2.5)


def _oblique_affine():
    """Rotated, axis-swapped (left-handed), anisotropic, translated."""
    a, b = np.deg2rad(20.0), np.deg2rad(10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    # Voxel X runs towards posterior, Y towards left: orientation ('P', 'L', 'S').
    swap = np.array([[0, -1, 0], [-1, 0, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ swap @ np.diag(ZOOMS)
    affine[:3, 3] = (-90.5, 60.25, -40.0)
    return affine


AFFINE = _oblique_affine()


def write_nifti(path, data, affine=AFFINE):
    """A NIfTI file with every header field save_volume must keep set."""
    image = nib.Nifti1Image(data, affine)
    hdr = image.header
    hdr.set_sform(affine, code=2)
    hdr.set_qform(affine, code=1)
    hdr.set_xyzt_units("mm", "sec")
    hdr["descrip"] = b"medresae test"
    hdr.set_intent(3, (7.0,), name="medresae intent")
    hdr["pixdim"][4:] = (2.0, 0.5, 0.25, 0.125)
    nib.save(image, str(path))
    return str(path)


def int16_volume(shape=(12, 10, 6), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 3000, size=shape).astype(np.int16)


def raw_header(path):
    """The header bytes as on disk (nibabel.load moves scl_* into dataobj)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        return nib.Nifti1Header.from_fileobj(f)


def assert_same_geometry(written, original):
    a, b = nib.load(written).header, nib.load(original).header
    np.testing.assert_array_equal(a.get_sform(), b.get_sform())
    np.testing.assert_array_equal(a.get_qform(), b.get_qform())
    assert int(a["sform_code"]) == int(b["sform_code"]) == 2
    assert int(a["qform_code"]) == int(b["qform_code"]) == 1
    np.testing.assert_array_equal(a["pixdim"], b["pixdim"])
    assert a.get_xyzt_units() == b.get_xyzt_units() == ("mm", "sec")
    assert a["descrip"] == b["descrip"] == b"medresae test"
    assert a.get_intent() == b.get_intent() == ("t test", (7.0,), "medresae intent")


def assert_one_line(err, name):
    message = str(err.value)
    assert "\n" not in message, message
    assert name in message, message
    return message


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return write_nifti(folder / "scan.nii.gz", int16_volume())


@pytest.fixture
def out_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- round trips


def test_round_trip_float32_keeps_header_and_data(source, out_dir):
    vol = load_volume(source)
    assert vol.array.shape == (12, 10, 6, 1) and vol.array.dtype == np.float32
    assert vol.source_dtype == np.int16 and vol.path == source
    np.testing.assert_array_equal(vol.array[..., 0], int16_volume())
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-5)

    out = str(out_dir / "denoised.nii.gz")
    assert save_volume(out, vol.array, like=vol) == out
    assert os.listdir(out_dir) == ["denoised.nii.gz"]
    assert_same_geometry(out, source)
    written = nib.load(out)
    assert written.shape == (12, 10, 6) and written.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), int16_volume())
    disk = raw_header(out)
    assert float(disk["scl_slope"]) == 1.0 and float(disk["scl_inter"]) == 0.0


def test_round_trip_input_dtype_rounds_and_clips(source, out_dir):
    vol = load_volume(source)
    array = vol.array.copy()
    array[0, 0, 0, 0] = 40000.4
    array[1, 0, 0, 0] = -40000.0
    array[2, 0, 0, 0] = 12.6
    array[3, 0, 0, 0] = -3.5
    with pytest.warns(ClippedValuesWarning, match="2 of 720 voxels"):
        out = save_volume(out_dir / "denoised.nii", array, like=vol, dtype="input")
    assert_same_geometry(out, source)
    written = nib.load(out)
    assert written.get_data_dtype() == np.int16
    on_disk = np.asanyarray(written.dataobj)
    assert on_disk.dtype == np.int16
    np.testing.assert_array_equal(on_disk[:4, 0, 0], [32767, -32768, 13, -4])
    expected = np.clip(np.rint(array[..., 0]), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(on_disk, expected)
    disk = raw_header(out)
    assert float(disk["scl_slope"]) == 1.0 and float(disk["scl_inter"]) == 0.0


def test_channels_added_keep_geometry_and_pixdim(source, out_dir):
    vol = load_volume(source)
    out = save_volume(out_dir / "two.nii.gz", np.repeat(vol.array, 2, axis=-1), like=vol)
    assert nib.load(out).shape == (12, 10, 6, 2)
    assert_same_geometry(out, source)


def test_named_dtype_and_no_like(out_dir):
    array = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 1.5
    out = save_volume(out_dir / "plain.nii.gz", array, dtype="uint8")
    written = nib.load(out)
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(written.affine, np.eye(4))
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), np.rint(array))


def test_overwrite_true_replaces_existing_output(source, out_dir):
    vol = load_volume(source)
    out = out_dir / "denoised.nii.gz"
    out.write_bytes(b"old")
    save_volume(out, vol.array * 2, like=vol, overwrite=True)
    np.testing.assert_array_equal(nib.load(out).get_fdata(), 2.0 * int16_volume())
    assert os.listdir(out_dir) == ["denoised.nii.gz"]


def test_output_permissions_follow_umask(source, out_dir):
    umask = os.umask(0)
    os.umask(umask)
    out = save_volume(out_dir / "a.nii.gz", load_volume(source).array)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask


def test_2d_4d_and_5d_singleton_shapes(tmp_path):
    rng = np.random.default_rng(1)
    cases = {
        "2d.nii": ((8, 6), (8, 6, 1, 1)),
        "4d.nii.gz": ((6, 5, 4, 3), (6, 5, 4, 3)),
        "5d.nii.gz": ((6, 5, 4, 1, 2), (6, 5, 4, 2)),
    }
    for name, (shape, expected) in cases.items():
        data = rng.standard_normal(shape).astype(np.float32)
        vol = load_volume(write_nifti(tmp_path / name, data))
        assert vol.array.shape == expected, name
        np.testing.assert_array_equal(vol.array.reshape(shape), data)
        assert vol.spatial_shape == expected[:3]
    vol = load_volume(tmp_path / "4d.nii.gz")
    out = save_volume(tmp_path / "4d_out.nii.gz", vol.array, like=vol)
    assert nib.load(out).shape == (6, 5, 4, 3)
    vol = load_volume(tmp_path / "2d.nii")
    assert nib.load(save_volume(tmp_path / "2d_out.nii", vol.array[:, :, 0, 0], like=vol)).shape == (8, 6)


def test_voxel_sizes_and_orientation_of_oblique_affine(source):
    vol = load_volume(source)
    np.testing.assert_allclose(vol.voxel_sizes, ZOOMS, atol=1e-5)
    assert vol.orientation == ("P", "L", "S")
    assert "scan.nii.gz" in repr(vol) and "\n" not in repr(vol)


def test_helpers(tmp_path):
    assert is_nifti_path("a.nii") and is_nifti_path("b.NII.GZ")
    assert not is_nifti_path("c.gz") and not is_nifti_path("d.nii.gz.txt")
    for name in ("b.nii.gz", "a.nii", ".hidden.nii.gz", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.nii").mkdir()
    assert list_nifti(tmp_path) == [str(tmp_path / "a.nii"), str(tmp_path / "b.nii.gz")]
    with pytest.raises(InputFileNotFoundError):
        list_nifti(tmp_path / "nope")


# ---------------------------------------------------------------- DICOM


def write_dicom_series(folder, n_slices=4, series_uid=None, spacing=(0.8, 0.7), thickness=2.5):
    """A real series of 16x16 uint16 MR slices; returns the pixel arrays."""
    os.makedirs(folder, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    pixels = []
    for i in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.Modality = "MR"
        ds.PatientName = "Test^Phantom"
        ds.PatientID = "0"
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0.0, 0.0, i * thickness]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = thickness
        ds.Rows = ds.Columns = 16
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        pixel = (np.arange(256).reshape(16, 16) * 3 + 100 * i).astype(np.uint16)
        ds.PixelData = pixel.tobytes()
        ds.save_as(os.path.join(folder, f"slice{i:03d}.dcm"), enforce_file_format=True)
        pixels.append(pixel)
    return pixels


def test_dicom_series_folder(tmp_path):
    folder = tmp_path / "series"
    pixels = write_dicom_series(folder)
    (folder / "README.txt").write_text("not a slice")
    (folder / "sub").mkdir()
    (folder / ".hidden.dcm").write_bytes(b"junk")
    vol = load_volume(folder)
    assert vol.array.shape == (16, 16, 4, 1) and vol.array.dtype == np.float32
    assert vol.header is None and vol.source_dtype == np.uint16
    # DICOM rows are Y: MONAI's (X, Y, Z) array holds each slice transposed.
    for i, pixel in enumerate(pixels):
        np.testing.assert_array_equal(vol.array[:, :, i, 0], pixel.T)
    np.testing.assert_allclose(vol.voxel_sizes, (0.7, 0.8, 2.5), atol=1e-6)
    assert vol.orientation == ("L", "P", "S")

    out = save_volume(tmp_path / "from_dicom.nii.gz", vol.array, like=vol, dtype="input")
    written = nib.load(out)
    assert written.get_data_dtype() == np.uint16
    assert int(written.header["sform_code"]) == int(written.header["qform_code"]) == 1
    np.testing.assert_allclose(written.affine, vol.affine, atol=1e-6)
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), vol.array[..., 0])


def test_dicom_mixed_series_and_empty_folder(tmp_path):
    folder = tmp_path / "mixed"
    write_dicom_series(folder / "a")
    write_dicom_series(folder / "b")
    for sub in ("a", "b"):
        for name in os.listdir(folder / sub):
            os.rename(folder / sub / name, folder / f"{sub}_{name}")
        os.rmdir(folder / sub)
    with pytest.raises(InputFileError, match=r"mixed DICOM series \(2 series: ") as err:
        load_volume(folder)
    assert_one_line(err, str(folder)).endswith("put one series per folder")

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no slices here")
    with pytest.raises(InputFileError, match="no DICOM files") as err:
        load_volume(empty)
    assert_one_line(err, str(empty))


# ---------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    path = tmp_path / "missing.nii.gz"
    with pytest.raises(FileNotFoundError) as err:
        load_volume(path)
    assert isinstance(err.value, InputFileError)
    assert_one_line(err, "missing.nii.gz")
    assert os.listdir(tmp_path) == []


def test_text_file_named_nifti(tmp_path):
    path = tmp_path / "x.nii.gz"
    path.write_text("hello, I am not an image\n")
    with pytest.raises(InputFileError, match="not a readable NIfTI image") as err:
        load_volume(path)
    assert_one_line(err, "x.nii.gz")
    assert os.listdir(tmp_path) == ["x.nii.gz"]


@pytest.mark.parametrize("name", ["cut.nii.gz", "cut.nii"])
def test_truncated_file(tmp_path, name):
    data = np.random.default_rng(2).standard_normal((20, 20, 20)).astype(np.float32)
    path = write_nifti(tmp_path / name, data)
    blob = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(blob[: len(blob) // 2])
    with pytest.raises(InputFileError, match="truncated or corrupt") as err:
        load_volume(path)
    assert_one_line(err, name)
    assert os.listdir(tmp_path) == [name]


def test_unsupported_extension(tmp_path):
    path = tmp_path / "scan.txt"
    path.write_text("1 2 3")
    with pytest.raises(InputFileError, match=r"reads \.nii, \.nii\.gz, \.mgz, .*\.mha, \.mhd, or a folder") as err:
        load_volume(path)
    assert_one_line(err, "scan.txt")
    dcm = tmp_path / "slice.dcm"
    dcm.write_bytes(b"")
    with pytest.raises(InputFileError, match="pass the folder"):
        load_volume(dcm)


def test_5d_image(tmp_path):
    path = write_nifti(tmp_path / "five.nii.gz", np.ones((4, 4, 4, 2, 2), np.float32))
    with pytest.raises(InputFileError) as err:
        load_volume(path)
    message = assert_one_line(err, "five.nii.gz")
    assert "5-D image (shape (4, 4, 4, 2, 2))" in message
    assert "at most one channel axis" in message


@pytest.mark.parametrize("bad, words", [(np.nan, "(3 NaN, 0 inf)"), (np.inf, "(0 NaN, 3 inf)")])
def test_non_finite_voxels(tmp_path, bad, words):
    data = np.random.default_rng(3).standard_normal((6, 6, 6)).astype(np.float32)
    data[0, 0, :3] = bad
    path = write_nifti(tmp_path / "bad.nii.gz", data)
    with pytest.raises(InputFileError, match="3 of 216 voxels are NaN or infinite") as err:
        load_volume(path)
    assert words in assert_one_line(err, "bad.nii.gz")
    assert load_volume(path, check_values=False).array.shape == (6, 6, 6, 1)


def test_constant_volumes(tmp_path):
    path = write_nifti(tmp_path / "zero.nii.gz", np.zeros((5, 5, 5), np.int16))
    with pytest.raises(InputFileError, match=r"the volume is empty \(all voxels are 0\)") as err:
        load_volume(path)
    assert_one_line(err, "zero.nii.gz")
    path = write_nifti(tmp_path / "seven.nii.gz", np.full((5, 5, 5), 7, np.int16))
    with pytest.raises(InputFileError, match=r"constant \(all voxels are 7\)") as err:
        load_volume(path)
    assert_one_line(err, "seven.nii.gz")


def test_existing_output_is_not_overwritten(source, out_dir):
    vol = load_volume(source)
    out = out_dir / "denoised.nii.gz"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError) as err:
        save_volume(out, vol.array, like=vol)
    assert isinstance(err.value, FileExistsError)
    assert "overwrite=True" in assert_one_line(err, "denoised.nii.gz")
    assert out.read_bytes() == b"precious"
    assert os.listdir(out_dir) == ["denoised.nii.gz"]


def test_output_in_missing_folder(source, tmp_path):
    out = tmp_path / "nowhere" / "denoised.nii.gz"
    with pytest.raises(InputFileError, match="does not exist") as err:
        save_volume(out, load_volume(source).array)
    assert_one_line(err, "denoised.nii.gz")
    assert not (tmp_path / "nowhere").exists()


def test_output_in_read_only_folder(source, out_dir):
    os.chmod(out_dir, 0o555)
    try:
        if os.access(out_dir, os.W_OK):
            pytest.skip("running as a user (root) that can write to a 0o555 folder")
        with pytest.raises(InputFileError, match="cannot write to folder") as err:
            save_volume(out_dir / "denoised.nii.gz", load_volume(source).array)
        assert_one_line(err, "denoised.nii.gz")
        assert os.listdir(out_dir) == []
    finally:
        os.chmod(out_dir, 0o755)


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_equal_to_input_is_refused(source, overwrite):
    before = open(source, "rb").read()
    vol = load_volume(source)
    with pytest.raises(InputFileError, match="would overwrite the input") as err:
        save_volume(source, vol.array * 0 + 1, like=vol, overwrite=overwrite)
    assert_one_line(err, "scan.nii.gz")
    assert open(source, "rb").read() == before
    assert os.listdir(os.path.dirname(source)) == ["scan.nii.gz"]


@pytest.mark.parametrize("name", ["denoised.txt", "denoised.nii.gz.bak", "denoised.img"])
def test_wrong_output_suffix(source, out_dir, name):
    with pytest.raises(InputFileError, match=r"writes \.nii, \.nii\.gz, \.mgz") as err:
        save_volume(out_dir / name, load_volume(source).array)
    assert_one_line(err, name)
    assert os.listdir(out_dir) == []


def test_save_array_with_nan(source, out_dir):
    vol = load_volume(source)
    array = vol.array.copy()
    array[0, 0, 0, 0] = np.nan
    array[1, 0, 0, 0] = -np.inf
    with pytest.raises(InputFileError, match="`array` has 2 NaN or infinite values") as err:
        save_volume(out_dir / "denoised.nii.gz", array, like=vol)
    assert_one_line(err, "denoised.nii.gz")
    assert os.listdir(out_dir) == []


def test_bad_save_arguments(source, out_dir):
    vol = load_volume(source)
    out = out_dir / "o.nii.gz"
    cases = [
        (dict(array=vol.array), dict(dtype="input"), "dtype='input' needs `like`"),
        (dict(array=vol.array), dict(dtype="complex64"), "`dtype` must be"),
        (dict(array=vol.array), dict(dtype="float16"), "`dtype` must be"),
        (dict(array=vol.array[:6]), dict(like=vol), "differs from the `like` volume"),
        (dict(array=np.zeros(5)), {}, "Received: array.shape=(5,)"),
        (dict(array=vol.array), dict(like="scan.nii.gz"), "`like` must be a Volume"),
    ]
    for args, kwargs, words in cases:
        with pytest.raises(InputFileError) as err:
            save_volume(out, **args, **kwargs)
        assert words in assert_one_line(err, "o.nii.gz")
    assert os.listdir(out_dir) == []


def test_volume_validates_its_fields():
    with pytest.raises(ValueError, match="array.shape"):
        Volume(np.zeros((4, 4, 4)), np.eye(4))
    with pytest.raises(ValueError, match="affine.shape"):
        Volume(np.zeros((4, 4, 4, 1)), np.eye(3))
