"""Contract test of the sbi simulator over every shipped spec: shapes, dtype, finiteness, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcsbi.errors import GcsbiValueError, SpecError
from gcsbi.spec.priors import NamedBoxPrior, ParameterSpec
from gcsbi.spec.resources import available_specs
from gcsbi.simulator.core import load_simulator

SPECS = available_specs("simulators")
SMOOTH = "+smooth"  # the same spec with [snapshot] faint_light = "smooth"


def load_variant(name: str):
    from gcsbi.simulator.core import ClusterSimulator, with_snapshot

    if not name.endswith(SMOOTH):
        return load_simulator(name)
    return ClusterSimulator(with_snapshot(name[: -len(SMOOTH)], faint_light="smooth"))


@pytest.fixture(scope="module", params=SPECS + [s + SMOOTH for s in SPECS])
def sim(request):
    return load_variant(request.param)


def _corners(prior: NamedBoxPrior, n_random: int, seed: int) -> torch.Tensor:
    lo, hi = prior.low, prior.high
    rng = np.random.default_rng(seed)
    picks = [np.zeros(len(lo), bool), np.ones(len(lo), bool)]
    picks += [rng.random(len(lo)) < 0.5 for _ in range(n_random)]
    return torch.stack([torch.where(torch.from_numpy(p), hi, lo) for p in picks])


def test_shapes_dtype_determinism(sim):
    theta = sim.prior.sample((3,))
    x = sim(theta, seed=7)
    assert x.shape == (3, *sim.output_shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert x.numpy().tobytes() == sim(theta, seed=7).numpy().tobytes()
    assert not torch.equal(x, sim(theta, seed=8))
    assert len(sim.channel_names) == sim.output_shape[0]
    assert sim.param_names == sim.prior.names


def test_prior_corners_are_finite(sim):
    theta = _corners(sim.prior, n_random=2, seed=0)
    out = sim.simulate(theta, seed=1, return_truth=True)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key


@pytest.mark.slow
def test_many_prior_corners_are_finite(sim):
    theta = _corners(sim.prior, n_random=14, seed=1)
    assert torch.isfinite(sim(theta, seed=2)).all()


def test_truth_maps():
    sim = load_simulator("hst-phat")
    theta = sim.prior.from_dict({**{n: (s.low + s.high) / 2 for n, s in zip(sim.prior.names, sim.prior.specs)},
                                 "log10_mass": 5.0, "distance_kpc": 780.0, "ebv": 0.0})
    out = sim.simulate(theta, seed=3, return_truth=True)
    assert set(out) >= {"x", "image", "clean", "background", "mass_map"}
    assert torch.equal(out["x"], sim(theta, seed=3))  # truth maps never change the mock
    # mass map holds the cluster mass that falls on the stamp (most of it for r_h ~ 3 pc)
    frac = out["mass_map"].sum().item() / 1e5
    assert 0.5 < frac <= 1.01
    # the clean image has the cluster's light: brighter in F814W than F336W for an old cluster
    clean = out["clean"][0].sum(dim=(1, 2))
    assert clean[2] > clean[0] > 0


def test_workers_give_same_bytes():
    """Row i draws from (seed, i): the same bytes for any worker count, chunking or batch length."""
    serial = load_simulator("hst-phat")
    theta = serial.prior.sample((4,))
    theta[:, serial.param_names.index("log10_mass")] = torch.tensor([4.0, 4.6, 4.2, 4.4])
    ref = serial(theta, seed=5).numpy().tobytes()
    assert serial(theta[:2], seed=5).numpy().tobytes() == serial(theta, seed=5)[:2].numpy().tobytes()
    for workers in (2, 3):  # different splits of the batch over the workers
        with load_simulator("hst-phat", workers=workers) as sim:
            assert sim(theta, seed=5).numpy().tobytes() == ref
            assert sim(theta[:3], seed=5).numpy().tobytes() == serial(theta, seed=5)[:3].numpy().tobytes()
            assert len(sim.worker_pids) == workers
        assert sim.worker_pids == ()


def test_bad_inputs(tmp_path):
    sim = load_simulator("hst-phat")
    with pytest.raises(GcsbiValueError, match="shape"):
        sim(torch.zeros(2, 3))
    with pytest.raises(GcsbiValueError, match="NaN"):
        sim(torch.full((1, len(sim.param_names)), float("nan")))
    weird = NamedBoxPrior((ParameterSpec("colour_of_sky", 0.0, 1.0),))
    with pytest.raises(SpecError, match="not simulator parameters"):
        load_simulator("hst-phat", prior=weird)
    few = NamedBoxPrior((ParameterSpec("age_gyr", 1.0, 2.0),))
    with pytest.raises(SpecError, match="must be sampled"):
        load_simulator("hst-phat", prior=few)
    from gcsbi.spec.simulator_spec import simulator_dir

    path = tmp_path / "x.toml"
    path.write_text((simulator_dir() / "hst-phat.toml").read_text() + "\n[snapshot.fixed]\nnot_a_param = 1.0\n")
    with pytest.raises(SpecError, match="unknown parameters"):
        load_simulator(path)
    path.write_text((simulator_dir() / "hst-phat.toml").read_text().replace('source = "limepy"', 'source = "magic"'))
    with pytest.raises(SpecError, match="source"):
        load_simulator(path)


def test_simulate_cli_writes_pictures(tmp_path, capsys):
    import json

    from gcsbi.cli import main

    plot = tmp_path / "grid.png"
    assert main(["simulate", "--spec", "hst-phat", "-n", "2", "--plot", str(plot), "--series", "age",
                 "--out", str(tmp_path / "x.npz"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["x_shape"] == [2, 6, 128, 128]
    assert plot.is_file() and (tmp_path / "grid_age.png").is_file()
    data = np.load(tmp_path / "x.npz")
    assert data["x"].shape == (2, 6, 128, 128) and np.isfinite(data["x"]).all()


def test_grid_picture_labels_scale_bands_and_titles():
    """The grid says which band is R, G, B, has a scale bar in arcsec with its pc at each mock's distance, and
    keeps the two-line panel titles as given (no re-wrapping)."""
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    from gcsbi.observe.composite import rgb_bands
    from gcsbi.simulator.plots import grid_figure, nice_length

    imgs = np.random.default_rng(0).poisson(10.0, (2, 3, 128, 128)).astype(float)
    titles = ["776 kpc, log M/M☉ 5.30, 11.0 Gyr\n[Fe/H] -1.6, E(B−V) 0.12"] * 2
    fig = grid_figure(imgs, np.full(3, 10.0), titles, suptitle="hst-phat mocks", bands=("F336W", "F475W", "F814W"),
                      pixel_scale_arcsec=0.05, distance_kpc=[776.0, 700.0])
    try:
        assert "RGB = F814W / F475W / F336W" in fig._suptitle.get_text()
        shown = [ax for ax in fig.axes if ax.images]
        assert [ax.get_title() for ax in shown] == titles
        bars = [[a for a in ax.artists if isinstance(a, AnchoredSizeBar)] for ax in shown]
        assert all(len(b) == 1 for b in bars)
        texts = [b[0].txt_label.get_text() for b in bars]
        assert texts == ["1″ = 3.8 pc", "1″ = 3.4 pc"]  # 1 arcsec at 776 and 700 kpc
    finally:
        plt.close(fig)
    fig = grid_figure(imgs[:1], np.full(3, 10.0), titles[:1], ncols=1, suptitle="held-out B165-like M31 cluster "
                      "(hst-phat)", bands=("F336W", "F475W", "F814W"), pixel_scale_arcsec=0.05, distance_kpc=776.0)
    try:  # one panel: the heading still fits the figure
        fig.canvas.draw()
        box = fig._suptitle.get_window_extent()
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    finally:
        plt.close(fig)
    assert rgb_bands(["F275W", "F336W", "F475W", "F814W", "F110W", "F160W"]) == ("F160W", "F475W", "F275W")
    assert nice_length(6.4) == 1.0 and nice_length(40.0) == 10.0 and nice_length(0.3) == 0.05


def test_rgb_composite_is_bounded():
    from gcsbi.observe.composite import rgb_composite

    img = np.random.default_rng(0).poisson(10.0, (3, 16, 16)).astype(float)
    rgb = rgb_composite(img, sky=np.full(3, 10.0))
    assert rgb.shape == (16, 16, 3) and rgb.min() >= 0 and rgb.max() <= 1
    with pytest.raises(GcsbiValueError):
        rgb_composite(np.zeros((16, 16)))


def test_library_snapshot_source(tmp_path):
    """A spec whose [snapshot] points at a folder of N-body-like snapshots (SnapshotLibrary)."""
    from gcsbi.clusters.models import ClusterParams, sample_cluster
    from gcsbi.spec.simulator_spec import simulator_dir

    lib = tmp_path / "lib"
    lib.mkdir()
    for i, (age, logm) in enumerate([(10.0, 4.5), (12.0, 5.0)]):
        snap = sample_cluster(ClusterParams(mass=10**logm, half_mass_radius=3.0, age_gyr=age),
                              rng=np.random.default_rng(i))
        snap.save(lib / f"model{i}.npz")
    doc = (simulator_dir() / "hst-phat.toml").read_text()
    doc = doc[: doc.index("[snapshot]")] + '[snapshot]\nsource = "library"\nlibrary = "lib"\ndefault_prior = "m31-gc"\n'
    spec = tmp_path / "nbody.toml"
    spec.write_text(doc)
    sim = load_simulator(spec)
    theta = sim.prior.sample((2,))
    x = sim(theta, seed=0)
    assert x.shape == (2, *sim.output_shape) and torch.isfinite(x).all()
    assert torch.equal(x, sim(theta, seed=0))


def test_spec_identity_does_not_depend_on_file_location(tmp_path):
    """Checkpoints store sim.spec: a copy of the same TOML elsewhere must give the same spec,
    an edited one a different digest (so a posterior trained in one checkout loads in another)."""
    from gcsbi.spec.simulator_spec import simulator_dir

    text = (simulator_dir() / "hst-phat.toml").read_text()
    copy = tmp_path / "hst-phat.toml"
    copy.write_text(text)
    assert load_simulator(copy).spec == load_simulator("hst-phat").spec
    copy.write_text(text.replace("surface_brightness = 21.0", "surface_brightness = 21.5"))
    assert load_simulator(copy).spec["simulator"]["sha256"] != load_simulator("hst-phat").spec["simulator"]["sha256"]
