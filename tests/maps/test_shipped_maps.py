"""The shipped map models: they load for their posteriors and get fresh mocks right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcsbi.inference import load_posterior, shipped_posteriors
from gcsbi.maps.infer import SHIPPED_MAPS_DIR, find_map_model
from gcsbi.maps.targets import SUMMARY_NAMES, summaries

CASES = {"hst-phat_m31-gc": ("hst-phat", "m31-gc"), "hst-mw_milky-way-gc": ("hst-mw", "milky-way-gc")}
#: median |log10 (summed predicted map / true mass in the field)| allowed on fresh mocks; the Milky
#: Way decoder's maps are far off per pixel (bench/results/maps_hst-mw_milky-way-gc.json), so only
#: its derived-quantity posterior is held to a bound
MAP_SUM_BOUND = {"hst-phat_m31-gc": 0.15}
SHIPPED = [n for n in CASES if (SHIPPED_MAPS_DIR / f"{n}.pt").is_file() and n in shipped_posteriors()]


def _mocks(name: str, n: int, seed: int):
    from gcsbi.simulator import load_simulator

    spec, prior = CASES[name]
    sim = load_simulator(spec=spec, prior=prior)
    g = torch.Generator().manual_seed(seed)
    theta = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((n, len(sim.param_names)), generator=g)
    out = sim.simulate(theta, seed=seed, return_truth=True)
    return sim, theta, out


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_map_model_recovers_fresh_mocks(name):
    post = load_posterior(name)
    model = find_map_model(post)
    sim, theta, out = _mocks(name, 12, seed=77)
    names = list(sim.param_names)
    truth = summaries(out["mass_map"].numpy(), out["clean"].numpy(), distance_kpc=theta[:, 0].numpy(),
                      ebv=theta[:, names.index("ebv")].numpy(), photometry=model.photometry)
    draws = model.sample_summaries(out["x"], 300, seed=0)
    med = np.median(draws, axis=0)
    j = SUMMARY_NAMES.index("log10_mass_fov")
    # the mass in the field to within 0.15 dex for most mocks (held-out median errors: 0.04 / 0.06 dex)
    assert np.median(np.abs(med[:, j] - truth[:, j])) < 0.15
    if name in MAP_SUM_BOUND:
        pred = model.predict_maps(out["x"])
        tot = np.log10(pred["mass"].sum(axis=(1, 2)))
        assert np.median(np.abs(tot - truth[:, j])) < MAP_SUM_BOUND[name]


def test_every_shipped_image_posterior_has_a_map_model():
    missing = [n for n in CASES if n in shipped_posteriors() and not (SHIPPED_MAPS_DIR / f"{n}.pt").is_file()]
    assert not missing, f"no map model shipped for {missing}"


@pytest.mark.skipif("hst-phat_m31-gc" not in SHIPPED, reason="the shipped hst-phat map model is not installed")
def test_map_picture_says_units_band_and_arcsec():
    """The maps picture labels the mass map in M☉ per pixel, names the clean image's band and the RGB bands, and
    has axes in arcsec from the stamp centre (128 pixels of 0.05 arcsec: -3.2 to 3.2)."""
    import matplotlib.pyplot as plt

    from gcsbi.maps.plots import plot_examples

    model = find_map_model(load_posterior("hst-phat_m31-gc"))
    x = np.random.default_rng(0).normal(0.0, 1.0, (1, 6, 128, 128)).astype(np.float32)
    fig = plot_examples(model, x, title="B165 mock")
    try:
        images = [ax for ax in fig.axes if ax.images]
        assert len(images) == 4 and fig._suptitle.get_text() == "B165 mock"
        assert all(ax.get_xlabel() == "Δx [arcsec]" for ax in images)
        assert images[0].get_ylabel() == "Δy [arcsec]"
        assert np.allclose(images[1].images[0].get_extent(), (-3.2, 3.2, -3.2, 3.2))
        assert "F814W/F475W/F336W" in images[0].get_title() and "F814W" in images[3].get_title()
        colourbars = [ax.get_ylabel() for ax in fig.axes if not ax.images]
        assert "log₁₀ M☉ per 0.05″ pixel" in colourbars and "σ(log₁₀ M) [dex]" in colourbars
    finally:
        plt.close(fig)
