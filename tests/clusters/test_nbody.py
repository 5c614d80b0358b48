"""Readers of real N-body / Monte Carlo snapshots and the SnapshotLibrary.

Every format gets a tiny synthetic file written here (tmp_path) with known values.
"""

from __future__ import annotations

import gzip
import json
import warnings

import h5py
import numpy as np
import pytest

from gcsbi.clusters import library as library_mod
from gcsbi.clusters.library import INDEX_NAME, SnapshotLibrary
from gcsbi.clusters.nbody import (
    PHASE_CODES,
    detect_format,
    kstar_to_phase,
    read_snapshot,
    shrinking_sphere_centre,
)
from gcsbi.clusters.readers import AU_PC, PC_PER_MYR_KMS
from gcsbi.clusters.snapshot import G_PC_KMS2_MSUN, PHASE_UNKNOWN, Snapshot
from gcsbi.errors import GcsbiFileError, GcsbiValueError, GcsbiWarning

N = 6
POS = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, -3.0], [-1.5, 0.5, 0.2], [0.3, -0.7, 1.1], [2.2, 1.0, -0.4]])
VEL = np.array([[0.5, 1.0, -2.0], [1.5, 0, 0], [0, -1, 1], [2, 2, 0.1], [-0.3, 0.4, 0.9], [0.0, -1.2, 0.6]])
MASS = np.array([0.8, 1.2, 0.5, 2.0, 0.3, 0.9])
KSTAR = np.array([1, 0, 3, 11, 0, 14])
LUM = np.array([0.6, 0.05, 80.0, 1e-3, 0.01, 1e-10])  # Lsun
RAD = np.array([0.9, 0.5, 20.0, 0.012, 0.3, 1e-5])  # Rsun
TEFF = 5772.0 * (LUM / RAD**2) ** 0.25


# ------------------------------------------------------------------- writers
def write_table(tmp_path, ext):
    import astropy.units as u
    from astropy.table import Table

    t = Table()
    t["X"] = POS[:, 0] / 1000 * u.kpc  # units converted on reading
    t["y"] = POS[:, 1] * u.pc
    t["z"] = POS[:, 2]  # no unit: pc assumed
    t["VX"] = VEL[:, 0] * 1000 * u.m / u.s
    t["vy"] = VEL[:, 1] * u.km / u.s
    t["vz"] = VEL[:, 2] * u.km / u.s
    t["Mass"] = MASS * u.Msun
    t["kstar"] = KSTAR
    t["Lum"] = LUM * u.Lsun
    t["Teff"] = TEFF * u.K
    t["radius"] = RAD * u.Rsun
    path = tmp_path / f"stars.{ext}"
    if ext == "hdf5":
        t.write(path, path="stars", serialize_meta=True)
    else:
        t.write(path)
    return path, {"table_path": "stars"} if ext == "hdf5" else {}


def write_clustertools(tmp_path):
    path = tmp_path / "cluster.dat"
    np.savetxt(path, np.column_stack([MASS, POS, VEL, np.arange(1, N + 1)]))
    return path, {}


def _legacy_h5(path, *, with_binary):
    with h5py.File(path, "w") as fh:
        g = fh.create_group("Step#0")
        g.attrs["Time"] = 0.0
        n = N - 2 if with_binary else N
        g.attrs["N_SINGLE"] = n
        for i, k in enumerate("123"):
            g[f"X{k}"] = POS[:n, i].astype(np.float32)
            g[f"V{k}"] = VEL[:n, i].astype(np.float32)
        g["M"], g["KW"], g["L"] = MASS[:n].astype(np.float32), KSTAR[:n].astype(np.int32), LUM[:n].astype(np.float32)
        g["TE"], g["RS"], g["NAM"] = TEFF[:n].astype(np.float32), RAD[:n].astype(np.float32), np.arange(n)
        if with_binary:  # last two particles as one binary, relative coordinates in AU and km/s
            b = g.create_group("Binaries")
            m1, m2 = MASS[-2], MASS[-1]
            xc = (m1 * POS[-2] + m2 * POS[-1]) / (m1 + m2)
            vc = (m1 * VEL[-2] + m2 * VEL[-1]) / (m1 + m2)
            for i, k in enumerate("123"):
                b[f"XC{k}"], b[f"VC{k}"] = [xc[i]], [vc[i]]
                b[f"XR{k}"], b[f"VR{k}"] = [(POS[-2, i] - POS[-1, i]) / AU_PC], [VEL[-2, i] - VEL[-1, i]]
            b["M1"], b["M2"], b["KW1"], b["KW2"] = [m1], [m2], [KSTAR[-2]], [KSTAR[-1]]
            b["L1"], b["L2"], b["TE1"], b["TE2"] = [LUM[-2]], [LUM[-1]], [TEFF[-2]], [TEFF[-1]]
            b["RS1"], b["RS2"] = [RAD[-2]], [RAD[-1]]


def write_nbody6pp(tmp_path):
    path = tmp_path / "snap.40_0.h5part"
    _legacy_h5(path, with_binary=True)
    return path, {}


RBAR, ZMBAR, TSTAR = 2.0, 5.0e4, 0.5


def write_nbody6pp_beijing(tmp_path):
    """Beijing layout, output in N-body units (KZ(19)=0, KZ(12)=-1): scales from '000 Scalars'."""
    path = tmp_path / "snap.40_12.h5part"
    vstar = np.sqrt(G_PC_KMS2_MSUN * ZMBAR / RBAR)
    scal = np.zeros(70, dtype=np.float32)
    scal[[0, 2, 3, 5, 11, 35]] = [24.0, RBAR, ZMBAR, TSTAR, vstar, 0.0142 * 10**-1.5]
    with h5py.File(path, "w") as fh:
        g = fh.create_group("Step#0")
        g.attrs["Time"], g.attrs["N_SINGLE"] = 24.0, N
        g["000 Scalars"] = scal
        for i, k in enumerate("123"):
            g[f"00{i + 1} X{k}"] = POS[:, i] / RBAR
            g[f"00{i + 4} V{k}"] = VEL[:, i] / vstar
        g["023 M"] = MASS / ZMBAR
    return path, {"units": "nbody"}


def write_petar(tmp_path, bse=True):
    path = tmp_path / "data.10"
    cols = np.zeros((N, 34 if bse else 20))
    cols[:, 0], cols[:, 1:4], cols[:, 4:7] = MASS, POS, VEL / PC_PER_MYR_KMS
    if bse:
        cols[:, 12], cols[:, 13], cols[:, 14] = KSTAR, MASS * 1.1, MASS
        cols[:, 15], cols[:, 21] = RAD, LUM
    with open(path, "w") as fh:
        fh.write(f"10 {N} 11500.0\n")
        np.savetxt(fh, cols)
    return path, {}


CONV = {"lengthunitparsec": 1.7, "lengthunitcgs": 1.7 * 3.0857e18, "nbtimeunitcgs": 3.0e13, "timeunitsmyr": 120.0}
V_KMS = 1e-5 * CONV["lengthunitcgs"] / CONV["nbtimeunitcgs"]
R_CODE = np.array([0.2, 0.5, 1.0, 1.5, 2.0, 3.0])
VR_CODE = np.array([0.1, -0.3, 0.2, 0.0, -0.1, 0.05])
VT_CODE = np.array([0.4, 0.2, 0.1, 0.3, 0.2, 0.1])


def _write_conv(path):
    lines = ["#units"] + [f"{k}={v}" for k, v in CONV.items()]
    path.write_text("\n".join(lines) + "\n")


def write_cmc(tmp_path):
    path = tmp_path / "initial.snap0042.dat.gz"
    header = "# t=100 [code units]; All quantities below are in code units unless otherwise specified.\n"
    header += "#1:id #2:m[MSUN] #3:r #4:vr #5:vt #6:E #7:J #8:binflag #9:m0[MSUN] #10:m1[MSUN] #11:id0 #12:id1 "
    header += "#13:a[AU] #14:e #15:startype #16:luminosity[LSUN] #17:radius[RSUN] #18:bin_startype0 "
    header += "#19:bin_startype1 #20:bin_star_lum0[LSUN] #21:bin_star_lum1[LSUN] #22:bin_star_radius0[RSUN] "
    header += "#23:bin_star_radius1[RSUN]\n"
    rows = []
    for i in range(N):
        rows.append(f"{i} {MASS[i]} {R_CODE[i]} {VR_CODE[i]} {VT_CODE[i]} -1 0.1 0 0 0 0 0 0 0 "
                    f"{KSTAR[i]} {LUM[i]} {RAD[i]} 0 0 0 0 0 0")  # fmt: skip
    with gzip.open(path, "wt") as fh:
        fh.write(header + "\n".join(rows) + "\n")
    _write_conv(tmp_path / "initial.conv.sh")
    return path, {"rng": np.random.default_rng(1)}


def write_cmc_h5(tmp_path):
    """pandas 'fixed' frame layout, as DataFrame.to_hdf(key, format='fixed') writes it."""
    path = tmp_path / "initial.snapshots.h5"
    names = ["id", "m_MSUN", "r", "vr", "vt", "binflag", "startype", "luminosity_LSUN", "radius_RSUN"]
    values = np.column_stack([np.arange(N), MASS, R_CODE, VR_CODE, VT_CODE, np.zeros(N), KSTAR, LUM, RAD])
    with h5py.File(path, "w") as fh:
        for key, vals in (("0(t=0)", values * 0 + values), ("1(t=100)", values)):
            g = fh.create_group(key)
            g.attrs["pandas_type"] = b"frame"
            g["axis0"] = np.array(names, dtype="S")
            g["axis1"] = np.arange(N)
            g["block0_items"] = np.array(names, dtype="S")
            g["block0_values"] = vals
    _write_conv(tmp_path / "initial.conv.sh")
    return path, {"rng": np.random.default_rng(1)}


def write_gcsbi(tmp_path):
    snap = Snapshot(
        positions=POS, velocities=VEL, initial_mass=MASS, current_mass=MASS, weight=1.0, phase=0,
        log_teff=np.log10(TEFF), log_g=4.0, log_l=np.log10(LUM), abs_mag=None, filters=(), age_gyr=11.0, feh=-1.2,
    )  # fmt: skip
    return snap.save(tmp_path / "snap.npz"), {}


WRITERS = {
    "table-ecsv": (lambda p: write_table(p, "ecsv"), "table"),
    "table-fits": (lambda p: write_table(p, "fits"), "table"),
    "table-hdf5": (lambda p: write_table(p, "hdf5"), "table"),
    "clustertools": (write_clustertools, "clustertools"),
    "nbody6pp": (write_nbody6pp, "nbody6pp"),
    "nbody6pp-beijing": (write_nbody6pp_beijing, "nbody6pp"),
    "petar": (write_petar, "petar"),
    "cmc": (write_cmc, "cmc"),
    "cmc-h5": (write_cmc_h5, "cmc"),
    "gcsbi": (write_gcsbi, "gcsbi"),
}


# ------------------------------------------------------------------ contract
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_format_contract(tmp_path, name):
    writer, fmt = WRITERS[name]
    path, kwargs = writer(tmp_path)
    assert detect_format(path) == fmt
    snap = read_snapshot(path, recentre=False, **kwargs)
    assert len(snap) == N
    assert snap.meta.get("format", fmt) == fmt
    order = np.argsort(snap.current_mass)
    np.testing.assert_allclose(snap.current_mass[order], np.sort(MASS), rtol=1e-6)
    if fmt == "cmc":  # 1D model: radii and speeds are exact, directions random
        r_pc = np.sqrt((snap.positions**2).sum(axis=1))
        np.testing.assert_allclose(r_pc[order], (R_CODE * CONV["lengthunitparsec"])[np.argsort(MASS)], rtol=1e-9)
        v_r = (snap.positions * snap.velocities).sum(axis=1) / r_pc
        np.testing.assert_allclose(v_r[order], (VR_CODE * V_KMS)[np.argsort(MASS)], rtol=1e-9, atol=1e-12)
        speed2 = (snap.velocities**2).sum(axis=1)
        np.testing.assert_allclose(speed2[order], ((VR_CODE**2 + VT_CODE**2) * V_KMS**2)[np.argsort(MASS)], rtol=1e-9)
        assert snap.age_gyr == pytest.approx(100 * CONV["timeunitsmyr"] / 1000)
    else:
        src = np.argsort(MASS)
        np.testing.assert_allclose(snap.positions[order], POS[src], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(snap.velocities[order], VEL[src], rtol=1e-5, atol=1e-5)
    with_se = name not in ("clustertools", "nbody6pp-beijing", "gcsbi")
    if with_se:
        src = np.argsort(MASS)
        np.testing.assert_array_equal(snap.phase[order], kstar_to_phase(KSTAR[src]))
        np.testing.assert_allclose(snap.log_l[order], np.log10(LUM[src]), rtol=1e-5)
        np.testing.assert_allclose(snap.log_teff[order], np.log10(TEFF[src]), rtol=1e-5)
    elif fmt != "gcsbi":
        assert (snap.phase == PHASE_UNKNOWN).all() and np.isnan(snap.log_l).all()
    assert snap.abs_mag is None or fmt == "gcsbi"
    back = Snapshot.load(snap.save(tmp_path / "roundtrip.npz"))  # metadata stays JSON-serialisable
    assert back.positions.tobytes() == snap.positions.tobytes() and back.meta == snap.meta


def test_units_and_metadata_from_files(tmp_path):
    petar = read_snapshot(write_petar(tmp_path)[0], recentre=False)
    assert petar.age_gyr == pytest.approx(11.5)
    np.testing.assert_allclose(petar.initial_mass, MASS * 1.1)  # PeTar star.mass0
    bj = read_snapshot(write_nbody6pp_beijing(tmp_path)[0], units="nbody", recentre=False)
    assert bj.age_gyr == pytest.approx(24.0 * TSTAR / 1000) and bj.feh == pytest.approx(-1.5, abs=1e-5)
    assert read_snapshot(write_petar(tmp_path, bse=False)[0], age_gyr=3.0, feh=-2.0).feh == -2.0
    with pytest.raises(GcsbiValueError, match="length_scale_pc"):
        read_snapshot(write_clustertools(tmp_path)[0], units="nbody")


def test_binary_components_and_massless_remnants(tmp_path):
    path, _ = write_nbody6pp(tmp_path)
    snap = read_snapshot(path, recentre=False)
    assert snap.meta["n_binaries"] == 1 and snap.meta["layout"] == "legacy"
    kst = KSTAR.copy()
    kst[0] = 15  # a massless remnant is dropped
    table_path = tmp_path / "t.ecsv"
    from astropy.table import Table

    Table({"x": POS[:, 0], "y": POS[:, 1], "z": POS[:, 2], "vx": VEL[:, 0], "vy": VEL[:, 1], "vz": VEL[:, 2],
           "m": MASS, "KW": kst}).write(table_path)  # fmt: skip
    snap = read_snapshot(table_path)
    assert len(snap) == N - 1 and snap.meta["n_dropped_massless"] == 1
    assert set(np.unique(snap.phase)) <= set(PHASE_CODES.values())


def test_column_map_and_recentring(tmp_path):
    from astropy.table import Table

    shift = np.array([100.0, -50.0, 7.0])
    rng = np.random.default_rng(3)
    pos = rng.normal(size=(400, 3)) + shift
    vel = rng.normal(size=(400, 3)) + 5.0
    t = Table({"px": pos[:, 0], "py": pos[:, 1], "pz": pos[:, 2], "u": vel[:, 0], "v": vel[:, 1], "w": vel[:, 2],
               "mass": np.ones(400)})  # fmt: skip
    path = tmp_path / "custom.ecsv"
    t.write(path)
    with pytest.raises(GcsbiValueError, match="missing column"):
        read_snapshot(path)
    snap = read_snapshot(path, x="px", y="py", z="pz", vx="u", vy="v", vz="w")
    assert np.abs(np.median(snap.positions, axis=0)).max() < 0.3
    assert np.abs(snap.velocities.mean(axis=0)).max() < 0.3
    assert np.allclose(shrinking_sphere_centre(pos, np.ones(400)), shift, atol=0.3)
    with pytest.raises(GcsbiValueError, match="unknown column override"):
        read_snapshot(path, colour="px")


# ------------------------------------------------------------------ bad input
def test_bad_files(tmp_path):
    path, _ = write_petar(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")  # truncated
    with pytest.raises(GcsbiFileError, match="truncated"):
        read_snapshot(path)
    bad_h5 = tmp_path / "broken.h5part"
    bad_h5.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    with pytest.raises(GcsbiFileError, match="broken.h5part"):
        read_snapshot(bad_h5)
    nan_file = tmp_path / "nan.dat"
    data = np.column_stack([MASS, POS, VEL, np.arange(N)])
    data[2, 1] = np.nan
    np.savetxt(nan_file, data)
    with pytest.raises(GcsbiValueError, match="NaN"):
        read_snapshot(nan_file)
    odd = tmp_path / "notes.txt"
    odd.write_text("hello world\n")
    with pytest.raises(GcsbiFileError, match="format"):
        read_snapshot(odd)
    with pytest.raises(GcsbiValueError, match="unknown snapshot format"):
        read_snapshot(nan_file, format="gadget")
    with pytest.raises(GcsbiFileError, match="not found"):
        read_snapshot(tmp_path / "missing.dat")
    few = tmp_path / "few.dat"
    np.savetxt(few, np.ones((3, 4)))
    with pytest.raises(GcsbiFileError, match="columns"):
        read_snapshot(few, format="clustertools")


def test_cmc_needs_rng_and_conv(tmp_path):
    path, _ = write_cmc(tmp_path)
    with pytest.raises(GcsbiValueError, match="rng"):
        read_snapshot(path)
    (tmp_path / "initial.conv.sh").unlink()
    with pytest.raises(GcsbiFileError, match="conv"):
        read_snapshot(path, rng=np.random.default_rng(0))
    snap = read_snapshot(path, rng=np.random.default_rng(0), conv=CONV)
    again = read_snapshot(path, rng=np.random.default_rng(0), conv=CONV)
    assert snap.positions.tobytes() == again.positions.tobytes()


# ------------------------------------------------------------- shared N-body data
def test_clustertools_reference_data(shared_data):
    snap = read_snapshot(shared_data / "nbody" / "ngc6101_pckms_cluster.dat", age_gyr=13.0, feh=-1.98)
    assert len(snap) == 1936
    assert snap.total_mass == pytest.approx(1936.33, rel=1e-4)
    assert np.linalg.norm(np.average(snap.positions, axis=0, weights=snap.current_mass)) < 2.0
    assert 5.0 < snap.half_mass_radius() < 25.0
    assert 0.3 < snap.virial_ratio() < 0.7


def test_nbody_unit_reference_data(shared_data):
    path = shared_data / "nbody" / "g1phi1rv1m1N10000.dat"
    snap = read_snapshot(path, units="nbody", length_scale_pc=2.0, mass_scale_msun=1e5, age_gyr=12.0, feh=-1.5)
    assert len(snap) == 10_000 and snap.total_mass == pytest.approx(1e5)
    assert 0.3 < snap.virial_ratio() < 0.7  # King-like model in virial equilibrium
    assert 0.5 < snap.half_mass_radius() / 2.0 < 1.5  # r_h ~ 0.8 N-body lengths
    assert np.linalg.norm(snap.positions.mean(axis=0)) < 0.2


# ------------------------------------------------------------------- library
def _library_folder(tmp_path):
    root = tmp_path / "lib"
    for i, (age, mass, feh) in enumerate([(10.0, 1e4, -1.0), (12.0, 1e5, -1.5), (12.0, 3e5, -2.0)]):
        sub = root / f"model{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        m = np.full(200, mass / 200)
        Snapshot(
            positions=rng.normal(size=(200, 3)), velocities=rng.normal(size=(200, 3)), initial_mass=m,
            current_mass=m, weight=1.0, phase=0, log_teff=np.nan, log_g=np.nan, log_l=np.nan, abs_mag=None,
            filters=(), age_gyr=age, feh=feh,
        ).save(sub / f"s{i}.npz")  # fmt: skip
    path, _ = write_clustertools(root)  # no age/feh in the file: from the sidecar
    (root / "cluster.dat.json").write_text(json.dumps({"age_gyr": 8.0, "feh": -0.5, "model": "ct"}))
    (root / "broken.h5").write_bytes(b"not an hdf5 file")
    return root


def test_library_index_nearest_and_views(tmp_path):
    root = _library_folder(tmp_path)
    with pytest.warns(GcsbiWarning, match="broken.h5"):
        lib = SnapshotLibrary(root)
    assert len(lib) == 4 and [s[0] for s in lib.skipped] == ["broken.h5"]
    assert set(lib.table["model"]) == {"model0", "model1", "ct"}
    assert lib.nearest(mass=1.1e5).relpath == "model1/s1.npz"
    assert lib.nearest(age_gyr=12.0, feh=-1.9).relpath == "model0/s2.npz"
    assert lib.nearest(mass=2e4, model="model0").relpath == "model0/s0.npz"
    ct = lib.nearest(age_gyr=8.0)
    assert ct.model == "ct" and ct.feh == -0.5 and ct.n_particles == N
    a = lib.get(mass=1e5, rng=np.random.default_rng(7))
    b = lib.get(mass=1e5, rng=np.random.default_rng(7))
    c = lib.get(mass=1e5, rng=np.random.default_rng(8))
    assert a.positions.tobytes() == b.positions.tobytes() and a.velocities.tobytes() == b.velocities.tobytes()
    assert a.positions.tobytes() != c.positions.tobytes()
    assert a.total_mass == pytest.approx(1e5)  # the real snapshot, not rescaled
    r = np.sort(np.linalg.norm(a.positions, axis=1))
    np.testing.assert_allclose(r, np.sort(np.linalg.norm(lib.get(mass=1e5, rng=np.random.default_rng(1),
                                                                 random_view=False).positions, axis=1)))  # fmt: skip
    with pytest.raises(GcsbiValueError, match="model"):
        lib.nearest(mass=1e5, model="nope")
    with pytest.raises(GcsbiValueError, match="mass"):
        lib.nearest(mass=-1.0)


def test_library_reuses_index(tmp_path, monkeypatch):
    root = _library_folder(tmp_path)
    with pytest.warns(GcsbiWarning):
        first = SnapshotLibrary(root)
    assert (root / INDEX_NAME).is_file()

    def boom(*args, **kwargs):
        raise AssertionError("metadata should come from the index")

    monkeypatch.setattr(library_mod.SnapshotLibrary, "_make_entry", boom)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GcsbiWarning)  # broken.h5: skipped again from its cached error
        second = SnapshotLibrary(root)
    assert second.entries == first.entries


def test_library_toml_and_empty(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    with pytest.raises(GcsbiValueError, match="empty"):
        SnapshotLibrary(root, write_index=False).nearest(mass=1e5)
    path, _ = write_nbody6pp_beijing(root)
    (root / "library.toml").write_text(
        "[defaults]\nfeh = -1.7\n\n"
        f'[files."{path.name}"]\nmodel = "bj"\nread = {{ units = "nbody" }}\n'
    )
    lib = SnapshotLibrary(root, write_index=False)
    entry = lib.nearest(mass=1.0)
    assert entry.model == "bj" and entry.feh == -1.7 and entry.age_gyr == pytest.approx(0.012)
    assert entry.mass_msun == pytest.approx(MASS.sum(), rel=1e-5)
    assert not (root / INDEX_NAME).exists()
    (root / "library.toml").write_text("[defaults]\nfeh = -1.7\nsurprise = 1\n")
    with pytest.raises(GcsbiValueError, match="surprise"):
        SnapshotLibrary(root)
    with pytest.raises(GcsbiFileError):
        SnapshotLibrary(tmp_path / "nowhere")


# ----------------------------------------------------------------- photometry
def test_attach_photometry_isochrone_and_stellar_columns(tmp_path):
    from gcsbi.clusters.nbody import attach_photometry
    from gcsbi.stars import Phase

    m = np.array([0.3, 0.5, 0.7, 2.0, 10.0, 30.0])
    bare = Snapshot(
        positions=POS, velocities=VEL, initial_mass=m, current_mass=m, weight=np.array([1, 1, 1, 1, 1, 1.0]),
        phase=PHASE_UNKNOWN, log_teff=np.nan, log_g=np.nan, log_l=np.nan, abs_mag=None, filters=(),
        age_gyr=12.0, feh=-1.5,
    )  # fmt: skip
    phot = attach_photometry(bare, rng=np.random.default_rng(0), filters=("V",))
    v = phot.abs_mag[:, 0]
    assert np.isfinite(v[:4]).all() and np.isinf(v[4:]).all()
    assert v[2] < v[1] < v[0]  # brighter up the main sequence
    assert list(phot.phase) == [Phase.MS, Phase.MS, Phase.MS, Phase.WD, Phase.NS, Phase.BH]
    np.testing.assert_array_equal(phot.current_mass, m)  # dynamics untouched
    heavy = attach_photometry(bare.replace(weight=np.full(N, 10.0)), rng=np.random.default_rng(0), filters=("V",))
    np.testing.assert_allclose(heavy.abs_mag[:4, 0], v[:4] - 2.5)
    stellar = read_snapshot(write_petar(tmp_path)[0], age_gyr=12.0, feh=-1.5)
    phot2 = attach_photometry(stellar, rng=np.random.default_rng(0), filters=("V",))
    order = np.argsort(stellar.log_l)
    lum_stars = phot2.abs_mag[order, 0][np.isfinite(phot2.abs_mag[order, 0])]
    assert np.all(np.diff(lum_stars[-3:]) < 0)  # more luminous -> brighter
    assert np.isinf(phot2.abs_mag[phot2.phase == Phase.BH]).all()
    with pytest.raises(GcsbiValueError, match="age"):
        attach_photometry(bare.replace(age_gyr=np.nan), rng=np.random.default_rng(0))


def test_attach_photometry_young_massive_stars_alive():
    from gcsbi.clusters.nbody import attach_photometry
    from gcsbi.stars import Phase

    m = np.array([0.5, 2.0, 10.0, 25.0, 40.0, 80.0])
    bare = Snapshot(
        positions=POS, velocities=VEL, initial_mass=m, current_mass=m, weight=np.ones(N),
        phase=PHASE_UNKNOWN, log_teff=np.nan, log_g=np.nan, log_l=np.nan, abs_mag=None, filters=(),
        age_gyr=0.005, feh=0.0,
    )  # fmt: skip
    phot = attach_photometry(bare, rng=np.random.default_rng(0), filters=("V",))
    assert np.isfinite(phot.abs_mag[:5, 0]).all() and not np.isin(phot.phase[:5], [Phase.NS, Phase.BH]).any()
    assert phot.phase[5] == Phase.BH and np.isinf(phot.abs_mag[5, 0])
