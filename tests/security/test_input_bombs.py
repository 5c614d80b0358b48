"""Decompression and allocation bombs as ``gcsbi infer`` observation files.

Each bomb declares gigabytes in a few KiB: an ``.npz`` member, a ``.npy`` header, a ``.pt``
archive, a tile-compressed FITS HDU or a gzipped FITS file. They are crafted by writing headers
only (no test allocates the declared size), and must be refused from their headers, naming the
file, the declared shape and what is expected, before any array is allocated: tracemalloc sees
numpy's allocations, so the peak stays at a few MiB where the original code reached gigabytes.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from astropy.io import fits
from numpy.lib import format as npf

from gcsbi.errors import GcsbiFileError, GcsbiValueError
from gcsbi.inference.fitsio import observation_for_posterior
from inference.test_robust_fits import _one_line_error  # tests/ is on sys.path

X_SHAPE = (6, 128, 128)
#: Most a refused bomb may allocate (numpy allocations seen by tracemalloc).
PEAK_LIMIT = 32 << 20


@pytest.fixture
def posterior(monkeypatch):
    """What observation_for_posterior reads of an hst-phat posterior, also served to the CLI."""
    from gcsbi.inference import checkpoint

    post = SimpleNamespace(x_shape=X_SHAPE, spec={"simulator": {"name": "hst-phat"}})
    monkeypatch.setattr(checkpoint, "load_posterior", lambda path, **kw: post)
    return post


def _refused(paths, posterior, error, *needles):
    """Read ``paths`` as x; the refusal is one line naming each of ``needles``, and little is allocated."""
    tracemalloc.start()
    try:
        with pytest.raises(error) as info:
            observation_for_posterior(paths, posterior)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
    assert peak < PEAK_LIMIT, f"{peak / 2**20:.0f} MiB allocated before refusing: {msg}"
    return msg


def _npy_header(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    npf.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _npz_bomb(path, shape, dtype="<f4", member="x.npy"):
    """An .npz whose member holds an npy header and 64 KiB of deflated zeros, declaring the whole array."""
    head = _npy_header(shape, dtype)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, head + bytes(1 << 16))
    declared = len(head) + int(np.prod(shape)) * np.dtype(dtype).itemsize
    _declare_zip_size(path, declared)
    return str(path)


def _declare_zip_size(path, declared):
    """Set the uncompressed size of a one-member zip archive (local header and central directory)."""
    raw = bytearray(path.read_bytes())
    raw[22:26] = struct.pack("<I", declared)
    cd = raw.rindex(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = struct.pack("<I", declared)
    path.write_bytes(raw)


def _declare(path, **cards):
    """Rewrite header cards in place, in every HDU: declare a size without writing the data."""
    raw = bytearray(path.read_bytes())
    for key, value in cards.items():
        tag, start = f"{key:<8}= ".encode(), 0
        while (i := raw.find(tag, start)) >= 0:
            if i % 80 == 0:
                raw[i:i + 80] = fits.Card(key, value).image.encode()
            start = i + 80
    path.write_bytes(raw)


def _compressed(path, *bands, shape=(16, 16)):
    """Tile-compressed images of zeros, one per band (FILTER), or one cube when no band is named."""
    hdus = ([fits.CompImageHDU(np.zeros(shape, np.float32), header=fits.Header({"FILTER": b})) for b in bands]
            or [fits.CompImageHDU(np.zeros(shape, np.float32))])
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)
    return path


@pytest.fixture(scope="module")
def two_bands(tmp_path_factory):
    """Small F336W and F475W images on the hst-phat grid, for the per-band path."""
    d = tmp_path_factory.mktemp("bands")
    out = []
    for b in ("F336W", "F475W"):
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.full((128, 128), 50.0, np.float32),
                                                        header=fits.Header({"FILTER": b}))]).writeto(d / f"{b}.fits")
        out.append(str(d / f"{b}.fits"))
    return out


def test_npz_bomb_refused_from_its_header(tmp_path, posterior, capsys):
    bomb = _npz_bomb(tmp_path / "bomb.npz", (3, 15000, 15000))  # 2.5 GiB declared in 2 KiB
    msg = _refused([bomb], posterior, GcsbiValueError, "bomb.npz", "(3, 15000, 15000)", str(X_SHAPE))
    assert "float32" in msg
    line = _one_line_error([bomb], capsys, "(3, 15000, 15000)")
    assert "bomb.npz" in line and str(X_SHAPE) in line


def test_npz_size_and_expansion_caps(tmp_path, posterior):
    batch = _npz_bomb(tmp_path / "batch.npz", (1000, *X_SHAPE), "<f8")  # the right shape, 750 MiB
    _refused([batch], posterior, GcsbiFileError, "batch.npz", f"(1000, {', '.join(map(str, X_SHAPE))})",
             "256 MiB", "split")
    zeros = _npz_bomb(tmp_path / "zeros.npz", (60, *X_SHAPE))  # 22.5 MiB under the cap, deflated ~10000x
    _refused([zeros], posterior, GcsbiFileError, "zeros.npz", "100x")
    liar = tmp_path / "liar.npz"  # a header declaring less than the archive does
    with zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", _npy_header(X_SHAPE) + bytes(4 * int(np.prod(X_SHAPE))))
    _declare_zip_size(liar, 200 << 20)
    _refused([str(liar)], posterior, GcsbiFileError, "liar.npz", "corrupt")
    good = tmp_path / "good.npz"  # a genuine compressed x is read as before, by its key x
    x = np.random.default_rng(0).normal(size=X_SHAPE).astype(np.float32)
    np.savez_compressed(good, x=x, note=np.arange(3))
    np.testing.assert_array_equal(observation_for_posterior(str(good), posterior), x)


def test_npy_header_checked_against_the_file(tmp_path, posterior):
    huge = tmp_path / "huge.npy"
    huge.write_bytes(_npy_header((3, 15000, 15000)) + bytes(4096))
    _refused([str(huge)], posterior, GcsbiValueError, "huge.npy", "(3, 15000, 15000)", str(X_SHAPE))
    short = tmp_path / "short.npy"
    short.write_bytes(_npy_header((200, *X_SHAPE)) + bytes(4096))
    _refused([str(short)], posterior, GcsbiFileError, "short.npy", "truncated")
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros(X_SHAPE, np.complex64))
    _refused([str(odd)], posterior, GcsbiValueError, "odd.npy", "complex64")


def test_pt_sizes_capped_before_torch_load(tmp_path, posterior):
    big = tmp_path / "big.pt"
    torch.save(torch.zeros(X_SHAPE), big)
    raw = bytearray(big.read_bytes())  # declare 2.5 GiB for the tensor's storage record
    with zipfile.ZipFile(big) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data/0"))
    cd = raw.rfind(struct.pack("<I", info.file_size), 0, raw.rindex(b"PK\x05\x06"))
    raw[cd:cd + 4] = struct.pack("<I", 2_700_000_000)
    big.write_bytes(raw)
    _refused([str(big)], posterior, GcsbiFileError, "big.pt", "2.51 GiB", str(X_SHAPE))
    sparse = tmp_path / "sparse.pt"
    with open(sparse, "wb") as f:
        f.truncate(258 << 20)  # past the 256 MiB cap, as a hole: no disk used
    _refused([str(sparse)], posterior, GcsbiFileError, "sparse.pt", "258 MiB")
    legacy = tmp_path / "legacy.pt"  # sizes not declared up front: refused unread
    torch.save(torch.zeros(X_SHAPE), legacy, _use_new_zipfile_serialization=False)
    _refused([str(legacy)], posterior, GcsbiFileError, "legacy.pt", "zip archive")


def test_fits_cube_bomb_refused_from_znaxis(tmp_path, posterior, capsys):
    cube = _compressed(tmp_path / "cube.fits", shape=(3, 16, 16))
    _declare(cube, ZNAXIS1=12000, ZNAXIS2=12000)  # 1.6 GiB declared in 20 KiB
    _refused([str(cube)], posterior, GcsbiValueError, "cube.fits", "(3, 12000, 12000)", str(X_SHAPE))
    line = _one_line_error([str(cube)], capsys, "(3, 12000, 12000)")
    assert str(X_SHAPE) in line
    batch = _compressed(tmp_path / "batch.fits", shape=(2, 6, 16, 16))
    _declare(batch, ZNAXIS1=128, ZNAXIS2=128, ZNAXIS4=2000)  # the right shape, 500 MiB
    _refused([str(batch)], posterior, GcsbiFileError, "batch.fits", "(2000, 6, 128, 128)", "256 MiB")


def test_per_band_fits_bombs(tmp_path, posterior, two_bands, capsys):
    band = _compressed(tmp_path / "band.fits", "F814W")
    _declare(band, ZNAXIS1=40000, ZNAXIS2=40000)
    _refused([*two_bands, str(band)], posterior, GcsbiFileError, "band.fits", "(40000, 40000)", "1 GiB")
    _one_line_error([*two_bands, str(band)], capsys, "(40000, 40000)")
    mef = _compressed(tmp_path / "mef.fits", "F336W", "F475W", "F814W")
    _declare(mef, ZNAXIS1=12000, ZNAXIS2=12000)  # three bands of 550 MiB each
    _refused([str(mef)], posterior, GcsbiFileError, "mef.fits", "(12000, 12000)", "1 GiB")
    small = _compressed(tmp_path / "small.fits", "F814W")
    _declare(small, ZNAXIS1=6000, ZNAXIS2=6000)  # under the cap, but 50000x its compressed size
    _refused([*two_bands, str(small)], posterior, GcsbiFileError, "small.fits", "(6000, 6000)", "100x", "funpack")
    plain = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((16, 16), np.float32),
                                                   header=fits.Header({"FILTER": "F814W"}))]).writeto(plain)
    gz = tmp_path / "plain.fits"
    gz.write_bytes(plain.getvalue())
    _declare(gz, NAXIS1=6000, NAXIS2=6000)
    gz = tmp_path / "plain.fits.gz"
    gz.write_bytes(gzip.compress((tmp_path / "plain.fits").read_bytes()))
    _refused([*two_bands, str(gz)], posterior, GcsbiFileError, "plain.fits.gz", "(6000, 6000)", "100x")
