"""Every DataTree gcsbi returns or writes stores as NetCDF4 (h5netcdf) and Zarr as it is, and comes back the same.

Covered: ``gcsbi.infer`` (one observation with a truth, a batch), ``infer(maps=True)`` (shipped
hst-phat_m31-gc posterior and map model), catalogue mode / ``gcsbi m31 infer`` (shipped catalogue
posterior, its ``posterior.nc``), ``calibration_datatree(calibrate(...))``, and ``gcsbi infer --out``
(.nc and .zarr). Writing and reading emit no warning at all; flags are integers (bool() works).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gcsbi.inference import calibrate, calibration_datatree, infer, open_datatree, save_datatree, simulate
from gcsbi.inference.arviz import portable_attrs, write_zarr

ARVIZ_GROUPS = {"posterior", "observed_data", "constant_data", "sample_stats", "posterior_predictive"}


def _flat(value):
    """An attribute as a flat list: NetCDF gives lists back as arrays and one-element lists as scalars."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.atleast_1d(np.asarray(value)).ravel().tolist()]


def _same_value(a, b) -> bool:
    fa, fb = _flat(a), _flat(b)
    if len(fa) != len(fb):
        return False
    for x, y in zip(fa, fb):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


def _same_attrs(a: dict, b: dict, where: str, ignore: tuple[str, ...] = ()) -> None:
    assert set(a) == set(b), f"{where}: attrs {sorted(set(a) ^ set(b))} differ"
    for k in set(a) - set(ignore):
        assert _same_value(a[k], b[k]), f"{where}: attr {k!r}: {a[k]!r} != {b[k]!r}"


def assert_same_tree(dt, back, *, ignore: tuple[str, ...] = ()) -> None:
    """Same groups, variables, coordinates, values and attributes (attributes compared as flat lists)."""
    assert {n.path for n in dt.subtree} == {n.path for n in back.subtree}
    for node in dt.subtree:
        other = back[node.path]
        _same_attrs(dict(node.attrs), dict(other.attrs), node.path, ignore)
        ds, ob = node.to_dataset(inherit=False), other.to_dataset(inherit=False)
        assert set(ds.variables) == set(ob.variables), node.path
        for name, var in ds.variables.items():
            o = ob[name]
            assert var.dims == o.dims, f"{node.path}/{name}"
            if var.dtype.kind in "OUS" or o.dtype.kind in "OUST":
                assert [str(v) for v in np.ravel(var.values)] == [str(v) for v in np.ravel(o.values)]
            else:
                np.testing.assert_array_equal(np.asarray(var.values), np.asarray(o.values), err_msg=f"{name}")
            _same_attrs(dict(var.attrs), dict(o.attrs), f"{node.path}/{name}")


def roundtrip(dt, folder: Path) -> tuple:
    """Write ``dt`` as NetCDF4 and Zarr (as a user would, and with gcsbi's writers) and read each back with
    xr.open_datatree; no warning may be emitted. Returns the trees read back."""
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt.to_netcdf(folder / "t.nc", engine="h5netcdf")
        nc = xr.open_datatree(folder / "t.nc").load()  # the default engine finds h5netcdf
        write_zarr(dt, folder / "t.zarr")
        zr = xr.open_datatree(folder / "t.zarr", engine="zarr").load()
        zr_plain = xr.open_datatree(folder / "t.zarr", engine="zarr", consolidated=False).load()
        saved = open_datatree(save_datatree(dt, folder / "s.nc")).load()
        nc.to_netcdf(folder / "again.nc", engine="h5netcdf")  # what was read back stores again
        zr.to_netcdf(folder / "from_zarr.nc", engine="h5netcdf")
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    for back in (nc, zr, zr_plain, saved):
        assert_same_tree(dt, back)
    return nc, zr


def _check_conventions(dt) -> None:
    """ArviZ group names, units on every posterior variable, NetCDF-safe attributes everywhere."""
    assert "posterior" in dt.children
    for node in dt.subtree:
        for k, v in node.attrs.items():
            assert portable_attrs({k: v})[k] == v, f"{node.path}: attr {k}={v!r} would not store as it is"
    for name, var in dt["posterior"].data_vars.items():
        assert "units" in var.attrs, name


@pytest.fixture(scope="module")
def toy_obs(toy_sim):
    theta, x = simulate(toy_sim, 3, seed=21, stream="inference")
    return theta, x


def test_infer_roundtrip_single_and_batch(toy_posterior, toy_obs, tmp_path):
    theta, x = toy_obs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gcsbi's own flags (OOD, prior edge) are not the point here
        one = infer(toy_posterior, x[0], num_samples=60, seed=2, truth=theta[0].numpy())
        batch = infer(toy_posterior, x, num_samples=40, seed=2, truth=theta.numpy())
    for dt, sub in ((one, "one"), (batch, "batch")):
        _check_conventions(dt)
        assert set(dt.children) <= ARVIZ_GROUPS
        assert dt["posterior"]["colour"].attrs["units"] == "mag" and dt["constant_data"]["colour_true"].attrs["units"] == "mag"
        nc, zr = roundtrip(dt, tmp_path / sub)
        for back in (nc, zr):
            flag = back.attrs["ood_flag"]
            assert _flat(flag) == _flat(dt.attrs["ood_flag"]) and all(f in (-1, 0, 1) for f in _flat(flag))
            assert bool(_flat(back.attrs["prior_edge_flag"])[0]) == bool(_flat(dt.attrs["prior_edge_flag"])[0])
    assert isinstance(one.attrs["ood_flag"], int) and isinstance(one.attrs["prior_edge_flag"], int)
    assert bool(one.attrs["ood_flag"]) == (one.attrs["ood_flag"] != 0)


def test_infer_with_shipped_maps_roundtrip(tmp_path):
    import torch

    from gcsbi.inference import load_posterior, shipped_posteriors
    from gcsbi.maps.infer import SHIPPED_MAPS_DIR
    from gcsbi.simulator import load_simulator

    if "hst-phat_m31-gc" not in shipped_posteriors() or not (SHIPPED_MAPS_DIR / "hst-phat_m31-gc.pt").is_file():
        pytest.skip("the hst-phat_m31-gc posterior or its map model is not shipped")
    post = load_posterior("hst-phat_m31-gc")
    sim = load_simulator(spec="hst-phat", prior="m31-gc")
    g = torch.Generator().manual_seed(3)
    theta = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((1, len(sim.param_names)), generator=g)
    x = sim(theta, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = infer(post, x[0], num_samples=50, seed=0, maps=True, truth=theta[0].numpy())
    _check_conventions(dt)
    assert {"maps", "derived"} <= set(dt.children)
    assert dt["posterior"]["log10_mass"].attrs["units"] == "dex(Msun)"
    assert dt["maps"]["mass"].attrs["units"] == "Msun/pixel" and dt["maps"]["x_arcsec"].attrs["units"] == "arcsec"
    assert dt["derived"]["log10_mass_1rh"].attrs["units"] == "dex(Msun)"
    assert dt["maps"]["band"].dtype == object  # variable-length text: no FixedLengthUTF32 warning in Zarr
    nc, zr = roundtrip(dt, tmp_path)
    assert list(nc["maps"]["band"].values) == ["F336W", "F475W", "F814W"]


def test_catalogue_infer_and_m31_cli_posterior_nc(tmp_path, capsys):
    from gcsbi.catalogue.inference import SHIPPED_CATALOGUE_POSTERIOR, infer_cluster
    from gcsbi.cli import main

    if not SHIPPED_CATALOGUE_POSTERIOR.is_file():
        pytest.skip("no shipped catalogue posterior")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = infer_cluster("B165", num_samples=200, seed=4, ppc_draws=32)  # as the CLI by default
    _check_conventions(dt)
    assert json.loads(dt.attrs["cluster"])["APID"] == 166 and dt.attrs["range_flag"] in (0, 1)
    assert "observed_data" in dt.children
    roundtrip(dt, tmp_path / "py")
    out = tmp_path / "m31"
    assert main(["m31", "infer", "B165", "--num-samples", "200", "--seed", "4", "--out", str(out)]) == 0
    assert "posterior.nc" in capsys.readouterr().out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = xr.open_datatree(out / "posterior.nc").load()
    assert not caught
    assert_same_tree(dt, back, ignore=("created_at",))  # the CLI writes the same DataTree as the Python API
    assert sorted(p.name for p in out.iterdir()) == [".gcsbi-output.json", "posterior.nc", "posterior.png",
                                                       "summary.csv"]


def test_calibration_datatree_roundtrip(toy_posterior, toy_sim, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = calibrate(toy_posterior, toy_sim, n_held_out=40, num_posterior_samples=100, c2st=False, seed=3)
    dt = calibration_datatree(report)
    cal = dt["calibration"]
    assert list(cal["parameter"].values) == list(report["parameters"])
    assert list(cal["parameter_units"].values) == ["dex", "pix", "mag"]
    assert cal["coverage"].dims == ("parameter", "level") and cal["coverage"].shape == (3, len(report["levels"]))
    np.testing.assert_allclose(cal["coverage"].sel(parameter="width").values, report["parameters"]["width"]["coverage"])
    assert cal.attrs["verdict"] == report["verdict"] and json.loads(cal.attrs["spec"]) == report["spec"]
    assert json.loads(cal.attrs["max_deviation_if_calibrated"]) == report["max_deviation_if_calibrated"]
    roundtrip(dt, tmp_path)


@pytest.mark.parametrize("name", ["post.nc", "post.zarr"])
def test_cli_infer_out_netcdf_or_zarr(toy_posterior, toy_obs, tmp_path, name):
    from gcsbi.cli import main

    ckpt = toy_posterior.save(tmp_path / "toy.pt")
    np.save(tmp_path / "obs.npy", toy_obs[1][0].numpy())
    out = tmp_path / name
    for _ in range(2):  # the second run replaces the first output
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the toy posterior's own flags
            assert main(["infer", str(ckpt), str(tmp_path / "obs.npy"), "--num-samples", "30", "--out", str(out)]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = xr.open_datatree(out, engine="zarr") if out.is_dir() else xr.open_datatree(out)
        back.load()
        back.to_netcdf(tmp_path / "copy.nc", engine="h5netcdf")  # the Zarr marker attribute is JSON text
    assert not caught, [str(w.message) for w in caught]
    assert back["posterior"]["width"].shape == (1, 30) and back["posterior"]["width"].attrs["units"] == "pix"
    if out.is_dir():
        from gcsbi.outputs import read_marker

        assert read_marker(out)["kind"] == "gcsbi infer"
    (tmp_path / "notes.nc").write_text("not NetCDF")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["infer", str(ckpt), str(tmp_path / "obs.npy"), "--num-samples", "5", "--out",
                   str(tmp_path / "notes.nc")])
    assert rc == 1 and (tmp_path / "notes.nc").read_text() == "not NetCDF"  # never over a file of another kind
