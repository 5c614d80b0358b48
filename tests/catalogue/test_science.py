"""Science checks of the shipped catalogue-mode posterior against Caldwell et al. (2011)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gcsbi.catalogue.inference import SHIPPED_CATALOGUE_POSTERIOR

pytestmark = pytest.mark.skipif(not SHIPPED_CATALOGUE_POSTERIOR.is_file(), reason="catalogue posterior not built")


def test_shipped_checkpoint():
    from gcsbi.catalogue import load_catalogue_posterior

    assert SHIPPED_CATALOGUE_POSTERIOR.stat().st_size <= 2_000_000
    post = load_catalogue_posterior()
    assert post.x_shape == (14,) and post.spec["simulator"]["kind"] == "catalogue"
    assert post.spec["simulator"]["filters"] == ["F275W", "F336W", "F475W", "F814W", "F110W", "F160W"]
    assert {"low", "high"} <= set(post.history["x_range"])


@pytest.mark.slow
def test_b165_and_caldwell_sample(shared_data, monkeypatch):
    import gcsbi
    from gcsbi.catalogue import caldwell_matched, infer_catalogue, load_catalogue_posterior
    from gcsbi.catalogue.compare import compare_with_caldwell
    from gcsbi.errors import OutOfDistributionWarning, PriorEdgeWarning

    monkeypatch.setenv("GCSBI_SHARED_DATA", str(shared_data))
    post = load_catalogue_posterior()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        warnings.simplefilter("ignore", PriorEdgeWarning)
        dt = gcsbi.infer(post, "B165", num_samples=2000, seed=0)
    m = np.asarray(dt["posterior"]["log10_mass"].values).ravel()
    lo, hi = np.percentile(m, [2.5, 97.5])
    assert lo <= 5.61 <= hi  # Caldwell's mass inside the 95% interval
    res = infer_catalogue(caldwell_matched(), post, num_samples=300, progress=False)
    s = compare_with_caldwell(res)["all"]["log10_mass"]
    assert s["n"] >= 100
    assert abs(s["median_offset"]) <= 0.1
    assert s["scatter_mad"] <= 0.2
    assert s["coverage_95"] >= 0.8
