"""The shipped image posteriors load against the current specs and cover fresh simulations."""

from __future__ import annotations

import pytest
import torch

from gcsbi.inference import load_posterior, shipped_posteriors
from gcsbi.simulator.core import load_simulator

IMAGE_POSTERIORS = [n for n in ("hst-phat_m31-gc", "hst-mw_milky-way-gc") if n in shipped_posteriors()]


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_POSTERIORS)
def test_shipped_posterior_matches_spec_and_covers_truth(name):
    spec_name, prior_name = name.split("_", 1)
    sim = load_simulator(spec_name, prior_name)
    post = load_posterior(name, expected_spec=sim.spec)  # a changed spec must mean retraining
    with torch.random.fork_rng():
        torch.manual_seed(123)
        theta = sim.prior.sample((12,))
    x = sim(theta, seed=321)
    draws = post.sample_batched((1000,), x)  # (S, 12, D)
    lo, hi = draws.quantile(0.05, dim=0), draws.quantile(0.95, dim=0)
    inside = ((theta >= lo) & (theta <= hi)).float().mean()
    assert inside > 0.75, f"90% intervals hold the truth for only {inside:.2f} of (cluster, parameter) pairs"
    k = sim.prior.names.index("log10_mass")
    err = (draws[..., k].median(0).values - theta[:, k]).abs().median()
    assert err < 0.2, f"median log-mass error {err:.2f} dex"
