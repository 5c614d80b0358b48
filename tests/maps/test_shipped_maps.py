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
