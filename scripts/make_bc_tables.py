"""Build gcsbi's shipped MIST/C3K bolometric-correction table from astroLACHESIS' ``bc_tables.h5``.

gcsbi reads only Av = 0 and the bands in :data:`gcsbi.stars.bolometric.REFERENCE_BANDS` and
:data:`~gcsbi.stars.bolometric.HOLDOUT_BANDS` (the UBVRI of ``DIRECT_BANDS`` are among the
reference bands). This script takes exactly those slices out of the source file, unchanged
(the source stores float32; so does the output, so every value is bit-identical), and writes
them as a small ``.npz`` (deflate level 9: 2.6 MB of float32 become ~0.55 MB) with fixed zip
timestamps, so the same source and the same zlib give the same bytes and the same SHA-256.

The source: the ``astrolachesis`` 1.0.9 wheel (MIT; ``lachesis/Datafiles/BC_tables/bc_tables.h5``,
SHA-256 164f12ac...fdf2f12, the same file as in 1.0.8)::

    pip download astrolachesis==1.0.9 --no-deps --only-binary=:all: -d /tmp/al
    python -m zipfile -e /tmp/al/astrolachesis-1.0.9-py3-none-any.whl /tmp/al/whl
    python scripts/make_bc_tables.py /tmp/al/whl/lachesis/Datafiles/BC_tables/bc_tables.h5

It prints the output's SHA-256: put it in ``BC_TABLE_SHA256`` (gcsbi/stars/bolometric.py), which
checks it on every load. See gcsbi/stars/data/README.md for provenance, citation and licence.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from gcsbi.stars.bolometric import BC_TABLE_FILE, BC_TABLE_SHA256, HOLDOUT_BANDS, REFERENCE_BANDS

#: astroLACHESIS 1.0.8/1.0.9 ``bc_tables.h5``.
SOURCE_SHA256 = "164f12ac758b6b454bbde9b08c28b1d0e51dbe08e2108d7a44723fc06fdf2f12"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract(source: Path, bands=REFERENCE_BANDS + HOLDOUT_BANDS) -> dict[str, np.ndarray]:
    """The Av = 0 slices of ``bands`` on the (Teff, log g, [Fe/H]) grid, in the source's own dtypes."""
    out_bc, systems, names = [], [], []
    axes = None
    with h5py.File(source, "r") as h5:
        for system, band, _, _ in bands:
            grp = h5[system]
            band_names = [n.decode() for n in grp["band_names"][:]]
            data = grp["data"][:]  # (nfeh, nrow, 5 + nband): Teff, logg, feh, Av, Rv, BCs
            feh = grp["feh_values"][:]
            sel = data[0, :, 3] == 0.0
            if not np.array_equal(data[:, :, [0, 1, 3]], np.broadcast_to(data[:1, :, [0, 1, 3]], data[:, :, :3].shape)):
                sys.exit(f"{system}: Teff, log g or Av rows differ between [Fe/H] slices")
            order = np.lexsort((data[0, sel, 1], data[0, sel, 0]))
            teff = np.unique(data[0, sel, 0])
            logg = np.unique(data[0, sel, 1])
            if teff.size * logg.size != int(sel.sum()):
                sys.exit(f"{system}: Av = 0 rows are not a full Teff x log g grid")
            col = 5 + band_names.index(band)
            # the same selection and reordering as gcsbi's reader of the h5 file (no arithmetic)
            bc = data[:, sel, col][:, order].reshape(feh.size, teff.size, logg.size).transpose(1, 2, 0)
            if axes is None:
                axes = (teff, logg, feh)
            elif not all(np.array_equal(a, b) for a, b in zip(axes, (teff, logg, feh))):
                sys.exit(f"{system}: not on the same grid as {bands[0][0]}")
            out_bc.append(np.ascontiguousarray(bc))
            systems.append(system)
            names.append(band)
    teff, logg, feh = axes
    return {
        "teff": teff,                        # K, float32 as in the source
        "logg": logg,                        # cgs, float32
        "feh": feh,                          # float64
        "bands": np.array(names),            # MIST band names
        "systems": np.array(systems),        # MIST photometric system of each band
        "bc": np.stack(out_bc),              # (nband, nteff, nlogg, nfeh), float32, Av = 0, Rv = 3.1
    }


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """An ``np.load``-able ``.npz`` whose bytes depend on the arrays (and zlib) only: fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asarray(arr), allow_pickle=False)
            zf.writestr(info, npy.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def check(source: Path, path: Path) -> float:
    """Max |shipped - source| over every shipped value, read back from both files independently."""
    with np.load(path, allow_pickle=False) as z:
        shipped = {k: z[k] for k in z.files}
    worst = 0.0
    with h5py.File(source, "r") as h5:
        for k, (system, band) in enumerate(zip(shipped["systems"], shipped["bands"])):
            grp = h5[str(system)]
            col = 5 + [n.decode() for n in grp["band_names"][:]].index(str(band))
            data = grp["data"][:]
            feh_idx = np.searchsorted(shipped["feh"], grp["feh_values"][:])
            for f, rows in zip(feh_idx, data):
                rows = rows[rows[:, 3] == 0.0]
                i = np.searchsorted(shipped["teff"], rows[:, 0])
                j = np.searchsorted(shipped["logg"], rows[:, 1])
                assert (shipped["teff"][i] == rows[:, 0]).all() and (shipped["logg"][j] == rows[:, 1]).all()
                got = shipped["bc"][k, i, j, f].astype(np.float64)
                want = rows[:, col].astype(np.float64)
                same_nan = np.isnan(got) == np.isnan(want)
                assert same_nan.all(), f"{band}: NaN pattern differs"
                ok = ~np.isnan(want)
                worst = max(worst, float(np.max(np.abs(got[ok] - want[ok]), initial=0.0)))
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="astroLACHESIS' Datafiles/BC_tables/bc_tables.h5")
    ap.add_argument("--out", type=Path, default=BC_TABLE_FILE, help=f"output .npz (default: {BC_TABLE_FILE})")
    args = ap.parse_args(argv)
    src_sha = _sha256(args.source)
    if src_sha != SOURCE_SHA256:
        print(f"warning: source SHA-256 {src_sha} is not astroLACHESIS 1.0.9's {SOURCE_SHA256}", file=sys.stderr)
    arrays = extract(args.source)
    write_npz(arrays, args.out)
    worst = check(args.source, args.out)
    sha = _sha256(args.out)
    bc = arrays["bc"]
    print(f"wrote {args.out}: {args.out.stat().st_size} bytes, bc {bc.shape} {bc.dtype}, "
          f"{len(arrays['teff'])} Teff x {len(arrays['logg'])} log g x {len(arrays['feh'])} [Fe/H], "
          f"{int(np.isnan(bc).sum())} NaN")
    print(f"bands: {', '.join(arrays['bands'])}")
    print(f"max |shipped - source| = {worst:.3g} mag")
    print(f"sha256 {sha}" + ("  (matches BC_TABLE_SHA256)" if sha == BC_TABLE_SHA256 else
                             "  (update BC_TABLE_SHA256 in gcsbi/stars/bolometric.py)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
