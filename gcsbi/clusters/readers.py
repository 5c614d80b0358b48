"""Per-format parsers behind :func:`gcsbi.clusters.nbody.read_snapshot`.

Each ``read_*`` returns :class:`RawParticles` in pc, km/s, Msun (stellar columns in
Lsun, K, Rsun); ``gcsbi.clusters.nbody.to_snapshot`` turns that into a centred
:class:`~gcsbi.clusters.snapshot.Snapshot`.

References followed for each layout:

* NBODY6++GPU HDF5 (``snap.40_<T>.h5part``): ``src/Main/custom_output.F`` and
  ``custom_output_facility.F`` of github.com/nbodyx/Nbody6ppGPU (commit 24535aa) —
  groups ``Step#N`` with attributes ``Time``, ``N_SINGLE``; datasets ``X1 X2 X3 V1 V2
  V3 M POT NAM`` and, with stellar evolution (KZ(12) > 0), ``RS L TE RC MC KW``;
  subgroup ``Binaries`` with ``XC1.. VC1.. M1 M2 XR1.. VR1.. RS1 L1 TE1 RS2 L2 TE2 KW1
  KW2``. The Beijing version (github.com/nbody6ppgpu/Nbody6PPGPU-beijing, commit
  e101bce) numbers the datasets (``001 X1`` ... ``023 M``, ``026 R*``, ``027 L*``,
  ``028 Teff*``, ``031 KW``; binaries ``101 Bin cm X1``, ``123 Bin M1*``, ``125 Bin rel
  X1`` ...) and adds ``000 Scalars`` (1-based: 1 TTOT, 3 RBAR, 4 ZMBAR, 6 TSTAR, 12
  VSTAR, 36 ZMET). Output is in pc, km/s, Msun, Lsun, K, Rsun (relative binary
  coordinates in AU) unless KZ(19)=0 and KZ(12)=-1, when everything is in N-body
  units; physical = RBAR * X, ZMBAR * M, VSTAR * V (``src/Main/units.f``). Also
  cross-checked with webbjj/clustertools ``io/nbody6pp.py`` (``_get_nbody6pp_hdf5``).
* PeTar ASCII snapshots: ``tools/analysis/data.py`` (``PeTarDataHeader``, ``Particle``)
  and ``bse.py`` (``SSEStarParameter``) of github.com/lwang-astro/PeTar (commit
  e969ec7). Header ``file_id n_glb time`` (+ ``xcm ycm zcm vxcm vycm vzcm`` with an
  external potential); columns ``mass pos[3] vel[3] binary_state`` [+ ``radius dm
  time_record time_interrupt``] [+ ``type mass0 mass rad mcore rcore spin epoch time
  lum`` with BSE] + ``r_search id mass_bk status r_in r_out acc_soft[3] pot pot_soft
  [pot_ext] n_nb``: 20/21, 24/25 or 34/35 columns. Astronomical unit set: Msun, pc,
  pc/Myr (BSE runs require it).
* CMC: ``write_snapshot`` in ClusterMonteCarlo/CMC-COSMIC ``cmc_io.c`` (header ``# t=<code
  time>`` then ``#1:id #2:m[MSUN] #3:r #4:vr #5:vt ... #8:binflag #9:m0[MSUN]
  #10:m1[MSUN] ... #15:startype #16:luminosity[LSUN] #17:radius[RSUN]
  #18:bin_startype0 #19:bin_startype1 #20:bin_star_lum0[LSUN] ...``), and
  NicholasRui/cmctoolkit (``make_unitdict``: ``conv.sh`` keys ``lengthunitparsec``,
  ``lengthunitcgs``, ``nbtimeunitcgs``, ``timeunitsmyr``; velocity unit
  ``1e-5 lengthunitcgs / nbtimeunitcgs`` km/s; ``make_2d_projection``: isotropic
  random angles for r, vr, vt). HDF5 ``*.snapshots.h5`` holds one pandas frame per
  key ``"<i>(t=<code time>)"`` with columns ``m_MSUN``, ``luminosity_LSUN``, ... .
* clustertools text (``m x y z vx vy vz id``): the test data of webbjj/clustertools.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiFileError, GcsbiValueError
from .snapshot import G_PC_KMS2_MSUN

__all__ = [
    "RawParticles",
    "UnitScales",
    "PC_PER_MYR_KMS",
    "AU_PC",
    "Z_SUN",
    "read_table",
    "read_clustertools",
    "read_nbody6pp",
    "read_petar",
    "read_cmc",
    "as_float",
    "check_finite",
]

#: 1 pc/Myr in km/s.
PC_PER_MYR_KMS = 0.9777922216807892
#: 1 AU in pc.
AU_PC = 4.84813681109536e-06
#: Solar metal mass fraction used for [Fe/H] = log10(Z / Z_SUN) (Asplund et al. 2009, as MIST).
Z_SUN = 0.0142


@dataclass(frozen=True)
class UnitScales:
    """How to turn a file's numbers into pc, km/s, Msun (see ``read_snapshot``)."""

    units: str = "auto"
    length_pc: float | None = None
    mass_msun: float | None = None
    velocity_kms: float | None = None

    def resolve(
        self, path: Path, *, native_v_kms: float = 1.0, file_scales: dict[str, float] | None = None
    ) -> tuple[float, float, float]:
        """(length, mass, velocity) factors; ``file_scales`` may give RBAR/ZMBAR/VSTAR."""
        if self.units != "nbody":
            return 1.0, 1.0, native_v_kms
        fs = file_scales or {}
        length = self.length_pc if self.length_pc is not None else fs.get("RBAR")
        mass = self.mass_msun if self.mass_msun is not None else fs.get("ZMBAR")
        if length is None or mass is None or not (length > 0 and mass > 0):
            raise GcsbiValueError(
                f"{path.name}: units='nbody' needs length_scale_pc and mass_scale_msun > 0 "
                f"(got {length}, {mass})"
            )
        vel = self.velocity_kms if self.velocity_kms is not None else fs.get("VSTAR")
        if vel is None or not vel > 0:
            vel = float(np.sqrt(G_PC_KMS2_MSUN * mass / length))
        return float(length), float(mass), float(vel)


@dataclass(frozen=True, eq=False)
class RawParticles:
    """Particles as read, before centring: physical units, optional stellar columns."""

    positions: np.ndarray
    velocities: np.ndarray
    mass: np.ndarray
    initial_mass: np.ndarray | None = None
    kstar: np.ndarray | None = None
    luminosity: np.ndarray | None = None  # Lsun
    teff: np.ndarray | None = None  # K
    radius: np.ndarray | None = None  # Rsun
    log_g: np.ndarray | None = None
    time_myr: float | None = None
    z_metal: float | None = None
    centred: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------- helpers
def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


_ALIASES: dict[str, tuple[str, ...]] = {
    "x": ("x", "xpc", "posx", "x1", "rx"),
    "y": ("y", "ypc", "posy", "x2", "ry"),
    "z": ("z", "zpc", "posz", "x3", "rz"),
    "vx": ("vx", "vxkms", "velx", "v1"),
    "vy": ("vy", "vykms", "vely", "v2"),
    "vz": ("vz", "vzkms", "velz", "v3"),
    "mass": ("mass", "m", "mmsun", "massmsun", "mcurrent", "currentmass", "mact", "mt"),
    "initial_mass": ("initialmass", "m0", "mini", "minit", "massini", "mzams", "m0msun"),
    "kstar": ("kstar", "kw", "startype", "stellartype", "ktype"),
    "luminosity": ("luminosity", "lum", "lumlsun", "luminositylsun", "llsun", "lstar"),
    "log_l": ("logl", "loglum", "logluminosity"),
    "teff": ("teff", "te", "teffk"),
    "log_teff": ("logteff", "logte"),
    "radius": ("radius", "rs", "rstar", "rad", "radiusrsun", "rsun"),
    "log_g": ("logg",),
}
_REQUIRED = ("x", "y", "z", "vx", "vy", "vz", "mass")


def as_float(a: Any, what: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"{path.name}: column {what} is not numeric: {exc}") from exc


def check_finite(path: Path, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        bad = ~np.isfinite(a)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(a), -1).any(axis=1))[:5]
            raise GcsbiValueError(f"{path.name}: {name} has NaN/inf values (rows {rows.tolist()} ...)")


def _open_text(path: Path) -> str:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt") as fh:
                return fh.read()
        return path.read_text()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise GcsbiFileError(f"cannot read {path}: {exc}") from exc


def _loadtxt(text: str, path: Path, *, usecols: Any = None, skip: int = 0) -> np.ndarray:
    text = re.sub(r"(?<=\s)(na|NaN|nan)(?=\s)", "nan", text)
    try:
        data = np.loadtxt(io.StringIO(text), comments="#", skiprows=skip, usecols=usecols, ndmin=2)
    except ValueError as exc:
        raise GcsbiFileError(f"{path}: malformed or truncated rows: {exc}") from exc
    return data


# ----------------------------------------------------------------------- tables
def read_table(
    path: Path, *, scales: UnitScales, table_path: str | None, column_map: dict[str, str]
) -> RawParticles:
    """Generic star table through ``astropy.table.Table.read`` (FITS/ECSV/CSV/HDF5)."""
    import astropy.units as u
    from astropy.table import Table

    unknown = set(column_map) - set(_ALIASES)
    if unknown:
        raise GcsbiValueError(f"unknown column override(s) {sorted(unknown)}; allowed {sorted(_ALIASES)}")
    kwargs: dict[str, Any] = {}
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf", ".he5"):
        kwargs["path"] = table_path
    elif path.suffix.lower() == ".csv":
        kwargs["format"] = "ascii.csv"
    try:
        table = Table.read(path, **kwargs)
    except Exception as exc:  # astropy raises many types for corrupt files
        raise GcsbiFileError(f"cannot read table {path}: {exc}") from exc
    by_norm = {_norm(c): c for c in table.colnames}
    cols: dict[str, str] = {}
    for key, aliases in _ALIASES.items():
        if key in column_map:
            if column_map[key] not in table.colnames:
                raise GcsbiValueError(f"{path.name}: column {column_map[key]!r} (for {key}) not in {table.colnames}")
            cols[key] = column_map[key]
            continue
        for alias in aliases:
            if alias in by_norm and by_norm[alias] not in cols.values():
                cols[key] = by_norm[alias]
                break
    missing = [k for k in _REQUIRED if k not in cols]
    if missing:
        raise GcsbiValueError(
            f"{path.name}: missing column(s) {missing}; found {table.colnames}. "
            "Pass overrides such as x='colname'"
        )
    length, mass_u, vel = scales.resolve(path)
    target = {"x": u.pc, "vx": u.km / u.s, "mass": u.Msun, "luminosity": u.Lsun, "teff": u.K, "radius": u.Rsun}
    factor = {"x": length, "vx": vel, "mass": mass_u, "initial_mass": mass_u}

    def column(key: str) -> np.ndarray | None:
        if key not in cols:
            return None
        col = table[cols[key]]
        base = {"y": "x", "z": "x", "vy": "vx", "vz": "vx", "initial_mass": "mass"}.get(key, key)
        unit = getattr(col, "unit", None)
        if unit is not None and base in target and unit != u.dimensionless_unscaled:
            try:
                return as_float(u.Quantity(col).to_value(target[base]), key, path)
            except u.UnitConversionError as exc:
                raise GcsbiValueError(f"{path.name}: column {cols[key]!r} has unit {unit}, not {target[base]}") from exc
        values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan) if key != "kstar" else np.asarray(col)
        return as_float(values, key, path) * factor.get(base, 1.0)

    pos = np.column_stack([column(k) for k in ("x", "y", "z")])
    velo = np.column_stack([column(k) for k in ("vx", "vy", "vz")])
    lum = column("luminosity")
    if lum is None and "log_l" in cols:
        lum = 10.0 ** column("log_l")
    teff = column("teff")
    if teff is None and "log_teff" in cols:
        teff = 10.0 ** column("log_teff")
    meta = {str(k): v for k, v in table.meta.items() if isinstance(v, (int, float, str, bool))}
    time = meta.get("time_myr")
    return RawParticles(
        positions=pos,
        velocities=velo,
        mass=column("mass"),
        initial_mass=column("initial_mass"),
        kstar=column("kstar"),
        luminosity=lum,
        teff=teff,
        radius=column("radius"),
        log_g=column("log_g"),
        time_myr=float(time) if isinstance(time, (int, float)) else None,
        meta={"columns": cols, "table_meta": meta},
    )


def read_clustertools(path: Path, *, scales: UnitScales) -> RawParticles:
    """Whitespace columns ``m x y z vx vy vz [id ...]`` (pc, km/s, Msun unless N-body units)."""
    data = _loadtxt(_open_text(path), path)
    if data.shape[0] == 0 or data.shape[1] < 7:
        raise GcsbiFileError(f"{path}: expected >= 7 columns (m x y z vx vy vz [id]), got shape {data.shape}")
    length, mass_u, vel = scales.resolve(path)
    return RawParticles(
        positions=data[:, 1:4] * length,
        velocities=data[:, 4:7] * vel,
        mass=data[:, 0] * mass_u,
        meta={"columns": "m x y z vx vy vz"},
    )


# ------------------------------------------------------------------ NBODY6++GPU
_BEIJING_SINGLE = {
    "x": ("001 X1", "002 X2", "003 X3"), "v": ("004 V1", "005 V2", "006 V3"), "m": "023 M",
    "rs": "026 R*", "l": "027 L*", "te": "028 Teff*", "kw": "031 KW",
}  # fmt: skip
_LEGACY_SINGLE = {
    "x": ("X1", "X2", "X3"), "v": ("V1", "V2", "V3"), "m": "M",
    "rs": "RS", "l": "L", "te": "TE", "kw": "KW",
}  # fmt: skip
_BEIJING_BINARY = {
    "xc": ("101 Bin cm X1", "102 Bin cm X2", "103 Bin cm X3"),
    "vc": ("104 Bin cm V1", "105 Bin cm V2", "106 Bin cm V3"),
    "m1": "123 Bin M1*", "m2": "124 Bin M2*",
    "xr": ("125 Bin rel X1", "126 Bin rel X2", "127 Bin rel X3"),
    "vr": ("128 Bin rel V1", "129 Bin rel V2", "130 Bin rel V3"),
    "rs1": "144 Bin RS1*", "l1": "145 Bin L1*", "te1": "146 Bin Teff1*",
    "rs2": "147 Bin RS2*", "l2": "148 Bin L2*", "te2": "149 Bin Teff2*",
    "kw1": "158 Bin KW1", "kw2": "159 Bin KW2",
}  # fmt: skip
_LEGACY_BINARY = {
    "xc": ("XC1", "XC2", "XC3"), "vc": ("VC1", "VC2", "VC3"), "m1": "M1", "m2": "M2",
    "xr": ("XR1", "XR2", "XR3"), "vr": ("VR1", "VR2", "VR3"),
    "rs1": "RS1", "l1": "L1", "te1": "TE1", "rs2": "RS2", "l2": "L2", "te2": "TE2",
    "kw1": "KW1", "kw2": "KW2",
}  # fmt: skip


def _h5get(group: Any, name: str, path: Path, n: int | None = None) -> np.ndarray | None:
    if name not in group:
        return None
    try:
        a = np.asarray(group[name][()], dtype=np.float64).reshape(-1)
    except (OSError, ValueError, TypeError) as exc:
        raise GcsbiFileError(f"{path}: dataset {name!r} is unreadable: {exc}") from exc
    if n is not None and a.shape != (n,):
        raise GcsbiFileError(f"{path}: dataset {name!r} has {a.size} values, expected {n}")
    return a


def _h5vec(group: Any, names: tuple[str, ...], path: Path, n: int | None) -> np.ndarray | None:
    cols = [_h5get(group, nm, path, n) for nm in names]
    if any(c is None for c in cols):
        return None
    return np.column_stack(cols)


def read_nbody6pp(path: Path, *, scales: UnitScales, step: int | str | None) -> RawParticles:
    """NBODY6++GPU HDF5 snapshot (legacy ``X1``/``Binaries`` or Beijing ``001 X1`` layout)."""
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise GcsbiFileError(f"{path} is not a readable HDF5 file: {exc}") from exc
    with fh:
        steps = sorted((k for k in fh.keys() if k.startswith("Step#")), key=lambda k: int(k[5:] or 0))
        if not steps:
            raise GcsbiFileError(f"{path}: no 'Step#N' groups (not an NBODY6++GPU snapshot)")
        name = f"Step#{step}" if isinstance(step, int) else (step or steps[0])
        if name not in fh:
            raise GcsbiValueError(f"{path.name}: no group {name!r}; available {steps}")
        grp = fh[name]
        beijing = "001 X1" in grp
        single, binary = (_BEIJING_SINGLE, _BEIJING_BINARY) if beijing else (_LEGACY_SINGLE, _LEGACY_BINARY)
        file_scales: dict[str, float] = {}
        time_nb = float(np.asarray(grp.attrs.get("Time", np.nan)).reshape(-1)[0])
        if beijing and "000 Scalars" in grp:
            s = np.asarray(grp["000 Scalars"][()], dtype=np.float64).reshape(-1)
            if s.size >= 36:
                file_scales = {"RBAR": s[2], "ZMBAR": s[3], "TSTAR": s[5], "VSTAR": s[11], "ZMET": s[35]}
                time_nb = float(s[0])
        mass = _h5get(grp, single["m"], path)
        if mass is None:
            raise GcsbiFileError(f"{path}: {name} has no mass dataset {single['m']!r}")
        n = mass.size
        pos = _h5vec(grp, single["x"], path, n)
        vel = _h5vec(grp, single["v"], path, n)
        if pos is None or vel is None:
            raise GcsbiFileError(f"{path}: {name} lacks position/velocity datasets {single['x'] + single['v']}")
        stellar = {k: _h5get(grp, single[k], path, n) for k in ("rs", "l", "te", "kw")}
        bgrp = grp["Binaries"] if "Binaries" in grp else (grp if beijing else None)
        parts = [(pos, vel, mass, stellar)]
        n_bin = 0
        if bgrp is not None and binary["m1"] in bgrp:
            m1 = _h5get(bgrp, binary["m1"], path)
            nb = m1.size
            m2 = _h5get(bgrp, binary["m2"], path, nb)
            xc, vc = _h5vec(bgrp, binary["xc"], path, nb), _h5vec(bgrp, binary["vc"], path, nb)
            if m2 is None or xc is None or vc is None:
                raise GcsbiFileError(f"{path}: {name} binaries lack M2 or centre-of-mass position/velocity")
            xr = _h5vec(bgrp, binary["xr"], path, nb)
            vr = _h5vec(bgrp, binary["vr"], path, nb)
            xr = np.zeros_like(xc) if xr is None else xr
            vr = np.zeros_like(vc) if vr is None else vr
            n_bin = nb
        length, mass_u, vscale = scales.resolve(path, file_scales=file_scales)
        au = AU_PC if scales.units != "nbody" else 1.0  # relative coordinates: AU, or N-body lengths
        if n_bin:
            mt = np.where(m1 + m2 > 0, m1 + m2, 1.0)
            for comp, sign, frac in ((1, 1.0, m2 / mt), (2, -1.0, m1 / mt)):
                parts.append(
                    (
                        xc + sign * frac[:, None] * xr * au,
                        vc + sign * frac[:, None] * vr,
                        m1 if comp == 1 else m2,
                        {k: _h5get(bgrp, binary[f"{k}{comp}"], path, nb) for k in ("rs", "l", "te", "kw")},
                    )
                )
    keys = ("rs", "l", "te", "kw")
    cat = {k: _concat([p[3][k] for p in parts], [p[2].size for p in parts]) for k in keys}
    has_se = stellar["kw"] is not None
    tstar = file_scales.get("TSTAR")
    zmet = file_scales.get("ZMET")
    return RawParticles(
        positions=np.concatenate([p[0] for p in parts]) * length,
        velocities=np.concatenate([p[1] for p in parts]) * vscale,
        mass=np.concatenate([p[2] for p in parts]) * mass_u,
        kstar=cat["kw"] if has_se else None,
        luminosity=cat["l"] if has_se else None,
        teff=cat["te"] if has_se else None,
        radius=cat["rs"] if has_se else None,
        time_myr=float(time_nb * tstar) if tstar and np.isfinite(time_nb) else None,
        z_metal=float(zmet) if zmet and zmet > 0 else None,
        meta={"step": name, "layout": "beijing" if beijing else "legacy", "n_binaries": int(n_bin),
              "time_nbody": time_nb if np.isfinite(time_nb) else None},
    )  # fmt: skip


def _concat(arrays: list[np.ndarray | None], sizes: list[int]) -> np.ndarray:
    return np.concatenate([np.full(s, np.nan) if a is None else a for a, s in zip(arrays, sizes)])


# ------------------------------------------------------------------------ PeTar
_PETAR_LAYOUTS = {20: "none", 21: "none+ext", 24: "base", 25: "base+ext", 34: "bse", 35: "bse+ext"}


def read_petar(path: Path, *, scales: UnitScales) -> RawParticles:
    """PeTar ASCII snapshot (units: Msun, pc, pc/Myr, or Hénon with ``units='nbody'``)."""
    text = _open_text(path)
    first = text.split("\n", 1)[0].split()
    if len(first) not in (3, 9) or not all(_num(t) for t in first):
        raise GcsbiFileError(f"{path}: PeTar header must be 'file_id n time [xcm ycm zcm vxcm vycm vzcm]', got {first}")
    n_expected, time = int(float(first[1])), float(first[2])
    data = _loadtxt(text, path, skip=1)
    if data.shape[0] != n_expected:
        raise GcsbiFileError(f"{path}: header says {n_expected} particles, found {data.shape[0]} rows (truncated?)")
    ncol = data.shape[1]
    if ncol not in _PETAR_LAYOUTS:
        raise GcsbiFileError(
            f"{path}: {ncol} columns; expected a PeTar soft-particle layout with {sorted(_PETAR_LAYOUTS)} columns"
        )
    length, mass_u, vel = scales.resolve(path, native_v_kms=PC_PER_MYR_KMS)
    bse = _PETAR_LAYOUTS[ncol].startswith("bse")
    meta: dict[str, Any] = {"layout": _PETAR_LAYOUTS[ncol], "file_id": int(float(first[0]))}
    if len(first) == 9:
        meta["offset"] = [float(t) for t in first[3:]]
    return RawParticles(
        positions=data[:, 1:4] * length,
        velocities=data[:, 4:7] * vel,
        mass=data[:, 0] * mass_u,
        initial_mass=data[:, 13] if bse else None,
        kstar=data[:, 12] if bse else None,
        radius=data[:, 15] if bse else None,
        luminosity=data[:, 21] if bse else None,
        time_myr=time if scales.units != "nbody" else None,
        meta=meta,
    )


def _num(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# -------------------------------------------------------------------------- CMC
def _conv_path(path: Path) -> Path:
    name = path.name
    for pat in (r"\.snap\d+\.dat(\.gz)?$", r"\.snapshots\.h5$", r"\.h5$"):
        if re.search(pat, name):
            return path.with_name(re.sub(pat, ".conv.sh", name))
    return path.with_name(path.name.split(".")[0] + ".conv.sh")


def _read_conv(conv: str | Path | dict[str, float] | None, path: Path) -> dict[str, float]:
    if isinstance(conv, dict):
        values = {str(k).lower(): float(v) for k, v in conv.items()}
    else:
        cpath = Path(conv) if conv is not None else _conv_path(path)
        if not cpath.is_file():
            raise GcsbiFileError(f"{path.name}: CMC unit file not found: {cpath} (pass conv=)")
        values = {}
        for line in cpath.read_text().splitlines():
            key, sep, val = line.partition("=")
            if sep and _num(val.strip()):
                values[key.strip().lower()] = float(val)
    need = ("lengthunitparsec", "lengthunitcgs", "nbtimeunitcgs", "timeunitsmyr")
    missing = [k for k in need if k not in values]
    if missing:
        raise GcsbiFileError(f"{path.name}: CMC conv file lacks {missing}")
    return values


def _cmc_text(path: Path) -> tuple[dict[str, np.ndarray], float | None]:
    text = _open_text(path)
    head = text[:4000].split("\n")
    tmatch = re.match(r"#\s*t\s*=\s*([-+0-9.eE]+)", head[0]) if head else None
    colline = next((ln for ln in head[:3] if re.match(r"#\s*1[:.]", ln)), None)
    if colline is None:
        raise GcsbiFileError(f"{path}: no CMC column header '#1:id #2:m[MSUN] ...'")
    names = {_norm(m.group(2)): int(m.group(1)) - 1 for m in re.finditer(r"(\d+)[:.]([^\s#$]+)", colline)}
    want = [c for c in ("r", "vr", "vt", "mmsun", "binflag", "m0msun", "m1msun", "startype", "luminositylsun",
                        "radiusrsun", "binstartype0", "binstartype1", "binstarlum0lsun", "binstarlum1lsun",
                        "binstarradius0rsun", "binstarradius1rsun") if c in names]  # fmt: skip
    data = _loadtxt(text, path, usecols=[names[c] for c in want])
    return {c: data[:, i] for i, c in enumerate(want)}, float(tmatch.group(1)) if tmatch else None


def _cmc_h5(path: Path, step: int | str | None) -> tuple[dict[str, np.ndarray], float | None]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise GcsbiFileError(f"{path} is not a readable HDF5 file: {exc}") from exc
    with fh:
        keys = sorted(fh.keys(), key=lambda k: int(re.match(r"\d+", k).group()) if re.match(r"\d+", k) else -1)
        if not keys:
            raise GcsbiFileError(f"{path}: no snapshots")
        key = keys[step] if isinstance(step, int) else (step or keys[-1])
        if key not in fh:
            raise GcsbiValueError(f"{path.name}: no snapshot {key!r}; available {keys[:5]}...")
        grp = fh[key]
        kind = grp.attrs.get("pandas_type", b"")
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind != "frame":
            raise GcsbiDependencyError(
                f"{path.name}[{key}] is a pandas '{kind or 'unknown'}' table; only pandas 'fixed' frames are read "
                "without PyTables (re-save with DataFrame.to_hdf(format='fixed') or use the .dat.gz snapshots)"
            )
        cols: dict[str, np.ndarray] = {}
        i = 0
        while f"block{i}_items" in grp:
            items = [x.decode() if isinstance(x, bytes) else str(x) for x in grp[f"block{i}_items"][()]]
            values = np.asarray(grp[f"block{i}_values"][()])
            for j, item in enumerate(items):
                if values.dtype.kind in "biuf":
                    cols[_norm(item)] = values[:, j].astype(np.float64)
            i += 1
    tm = re.search(r"t=([-+0-9.eE]+)", key)
    return cols, float(tm.group(1)) if tm else None


def read_cmc(
    path: Path,
    *,
    rng: np.random.Generator | None,
    step: int | str | None,
    conv: str | Path | dict[str, float] | None,
    units: str,
) -> RawParticles:
    """CMC snapshot (r, vr, vt in code units) -> 3D with isotropic random angles from ``rng``."""
    if units == "nbody":
        raise GcsbiValueError(f"{path.name}: CMC snapshots are converted with their conv.sh; use units='auto'")
    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError(
            f"{path.name}: CMC snapshots are 1D (r, vr, vt); pass rng=np.random.default_rng(seed) "
            "to draw the random orientations"
        )
    cols, t_code = _cmc_h5(path, step) if path.suffix.lower() in (".h5", ".hdf5") else _cmc_text(path)
    missing = [c for c in ("r", "vr", "vt", "mmsun") if c not in cols]
    if missing:
        raise GcsbiValueError(f"{path.name}: CMC snapshot lacks column(s) {missing}")
    units_d = _read_conv(conv, path)
    r_pc = units_d["lengthunitparsec"]
    v_kms = 1e-5 * units_d["lengthunitcgs"] / units_d["nbtimeunitcgs"]
    r, vr, vt, m = cols["r"], cols["vr"], cols["vt"], cols["mmsun"]
    check_finite(path, r=r, vr=vr, vt=vt, m=m)
    n = r.size
    # isotropic direction n_hat, and a random tangential direction perpendicular to it
    cos_t = rng.uniform(-1.0, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    psi = rng.uniform(0.0, 2.0 * np.pi, n)
    e_r = np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    e_t = np.column_stack([cos_t * np.cos(phi), cos_t * np.sin(phi), -sin_t])
    e_p = np.column_stack([-np.sin(phi), np.cos(phi), np.zeros(n)])
    pos = (r * r_pc)[:, None] * e_r
    e_tan = np.cos(psi)[:, None] * e_t + np.sin(psi)[:, None] * e_p
    vel = (vr * v_kms)[:, None] * e_r + (vt * v_kms)[:, None] * e_tan
    nan = np.full(n, np.nan)
    binflag = cols.get("binflag", np.zeros(n)) == 1
    single = ~binflag
    kstar = cols.get("startype", nan.copy())
    lum = cols.get("luminositylsun", nan.copy())
    rad = cols.get("radiusrsun", nan.copy())
    # singles, then both components of each binary at the binary's position
    sel = [single, binflag, binflag]
    masses = [m[single], cols.get("m0msun", 0.5 * m)[binflag], cols.get("m1msun", 0.5 * m)[binflag]]
    kst = [kstar[single], cols.get("binstartype0", nan)[binflag], cols.get("binstartype1", nan)[binflag]]
    lums = [lum[single], cols.get("binstarlum0lsun", nan)[binflag], cols.get("binstarlum1lsun", nan)[binflag]]
    rads = [rad[single], cols.get("binstarradius0rsun", nan)[binflag], cols.get("binstarradius1rsun", nan)[binflag]]
    has_se = "startype" in cols
    return RawParticles(
        positions=np.concatenate([pos[s] for s in sel]),
        velocities=np.concatenate([vel[s] for s in sel]),
        mass=np.concatenate(masses),
        kstar=np.concatenate(kst) if has_se else None,
        luminosity=np.concatenate(lums) if has_se else None,
        radius=np.concatenate(rads) if has_se else None,
        time_myr=t_code * units_d["timeunitsmyr"] if t_code is not None else None,
        centred=True,
        meta={"n_binaries": int(binflag.sum()), "time_code": t_code},
    )
