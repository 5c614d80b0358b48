"""The Jeans DataTree stores as NetCDF4 (h5netcdf) and Zarr as it is, opens with xr.open_datatree, and comes back
the same: ArviZ ``posterior`` (profiles and J-factors), documented ``mcmc`` and ``hdi``, units on every variable,
no warning when written or read."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import xarray as xr

from gcsbi_jeans.baseline import PARAM_NAMES, BaselineConfig, fit_baseline
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.export import UNITS, load_datatree, profiles_to_datatree, save_datatree
from gcsbi_jeans.core.grids import default_grids
from gcsbi_jeans.freeform import FreeformConfig, fit_freeform


def _flat(value):
    return [v.item() if isinstance(v, np.generic) else v for v in np.atleast_1d(np.asarray(value)).ravel().tolist()]


def _same_attrs(a: dict, b: dict, where: str) -> None:
    assert set(a) == set(b), f"{where}: {sorted(set(a) ^ set(b))}"
    for k in a:
        fa, fb = _flat(a[k]), _flat(b[k])
        same = len(fa) == len(fb) and all(x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
                                          for x, y in zip(fa, fb))
        assert same, f"{where}: attr {k!r}: {a[k]!r} != {b[k]!r}"


def assert_same_tree(dt, back, *, skip_root_attrs: tuple[str, ...] = ()) -> None:
    assert {n.path for n in dt.subtree} == {n.path for n in back.subtree}
    for node in dt.subtree:
        other = back[node.path]
        mine = {k: v for k, v in node.attrs.items() if node.path != "/" or k not in skip_root_attrs}
        theirs = {k: v for k, v in other.attrs.items() if node.path != "/" or k not in skip_root_attrs}
        _same_attrs(mine, theirs, node.path)
        ds, ob = node.to_dataset(inherit=False), other.to_dataset(inherit=False)
        assert set(ds.variables) == set(ob.variables), node.path
        for name, var in ds.variables.items():
            if var.dtype.kind in "OUS":
                assert [str(v) for v in np.ravel(var.values)] == [str(v) for v in np.ravel(ob[name].values)]
            else:
                np.testing.assert_array_equal(var.values, ob[name].values, err_msg=f"{node.path}/{name}")
            _same_attrs(dict(var.attrs), dict(ob[name].attrs), f"{node.path}/{name}")


def roundtrip(dt, folder) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt.to_netcdf(folder / "t.nc", engine="h5netcdf")
        nc = xr.open_datatree(folder / "t.nc").load()
        paths = save_datatree(dt, folder / "out")
        nc2 = xr.open_datatree(paths["netcdf"]).load()
        zr = xr.open_datatree(paths["zarr"], engine="zarr").load()  # consolidated: no RuntimeWarning
        zr2 = load_datatree(paths["zarr"]).load()
        zr.to_netcdf(folder / "from_zarr.nc", engine="h5netcdf")  # the marker attribute is JSON text
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    for back in (nc, nc2):
        assert_same_tree(dt, back)
    for back in (zr, zr2):  # the Zarr root has the output marker too
        assert_same_tree(dt, back, skip_root_attrs=("gcsbi_output",))
        assert json.loads(back.attrs["gcsbi_output"])["format"] == "gcsbi-output"


def _check_units(dt) -> None:
    for group in ("posterior", "mcmc", "hdi"):
        if group not in dt.children:
            continue
        ds = dt[group].to_dataset()
        for name in list(ds.data_vars) + [c for c in ("radius", "R") if c in ds.coords]:
            assert "units" in ds[name].attrs, f"{group}/{name}"
    post = dt["posterior"]
    assert post["rho"].attrs["units"] == "Msun kpc^-3" and post["mass"].attrs["units"] == "Msun"
    assert post["radius"].attrs["units"] == "kpc" and post["sigma_los_R"].attrs["units"] == "km s^-1"


@pytest.fixture(scope="module")
def baseline_dt(tiny_mock):
    stars, _ = tiny_mock
    radius, R = default_grids(stars, n_r=10)
    cfg = BaselineConfig(walkers=8, steps=40, burn=10, thin=2, n_grid=10, seed=3)
    res = fit_baseline(stars, parse_beta("iso"), cfg, radius=radius, R=R, n_draws=20, progress=False)
    return profiles_to_datatree(res.profiles, radius=radius, R=R, chain=res.chain, param_names=PARAM_NAMES,
                                attrs={"method": "emcee", "beta": "iso", "config": cfg.to_dict(),
                                       "positions_only": False, "note": None})


def test_baseline_fit_roundtrip(baseline_dt, tmp_path):
    dt = baseline_dt
    assert set(dt.children) == {"posterior", "mcmc", "hdi"}
    assert dict(dt["mcmc"].sizes) == {"chain": 8, "draw": 15}
    assert dt["mcmc"]["log10_rho_s"].attrs["units"] == UNITS["log10_rho_s"] == "dex(Msun kpc^-3)"
    assert list(dt["hdi"]["prob"].values) == [0.68, 0.95] and dt["hdi"]["ci_bound"].dtype == object
    attrs = dt["posterior"].attrs
    assert attrs["positions_only"] == 0 and attrs["note"] == "" and json.loads(attrs["config"])["walkers"] == 8
    _check_units(dt)
    roundtrip(dt, tmp_path)


def test_freeform_fit_with_jfactor_roundtrip(tiny_mock, tmp_path):
    stars, _ = tiny_mock
    cfg = FreeformConfig(walkers=24, steps=60, burn=30, thin=3, nodes=4, converge=False)
    res = fit_freeform(stars, cfg, beta=parse_beta("iso"), radius=np.geomspace(0.05, 1.0, 6), n_draws=30,
                       progress=False, distance_kpc=80.0)
    assert res.chain.shape[1] > res.chain.shape[0]  # more walkers than kept steps: arviz_base would warn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt = profiles_to_datatree(res.profiles, radius=res.radius, R=res.R, chain=res.chain,
                                  param_names=tuple(res.names), scalars=res.scalars,
                                  attrs={"method": "freeform", "beta": res.beta_spec, "light": res.light.to_dict(),
                                         "stellar_mass": 0.0})
    assert not caught, [str(w.message) for w in caught]
    post = dt["posterior"]
    # the J-factors come from the same draws as the profiles: ArviZ posterior, not a group of their own
    assert post["log10_J_0.5deg"].dims == ("chain", "draw") and post["log10_J_0.5deg"].attrs["units"] == \
        "dex(GeV^2 cm^-5)"
    assert "jfactor" not in dt.children and dt["mcmc"]["log10_rho_half"].attrs["units"] == "dex(Msun kpc^-3)"
    _check_units(dt)
    roundtrip(dt, tmp_path)
