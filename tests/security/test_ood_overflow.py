"""The out-of-distribution test on absurd observations: huge values, inf/NaN, non-finite embeddings.

A float32 observation scaled by 1e30 is finite, but its embeddings are ~1e31 and their squared
distances overflow float32 in the MMD, which then read p = 1 ("in distribution"). Such inputs
must be flagged (p-value 0, ``ood_flag`` True, a reason), while simulations stay unflagged.
"""

from __future__ import annotations

import importlib
import math
import warnings

import pytest
import torch

from gcsbi.errors import GcsbiValueError, OutOfDistributionWarning
from gcsbi.inference import infer
from inference.conftest import toy_posterior, toy_sim  # noqa: F401  (fixtures; tests/ is on sys.path)

infer_module = importlib.import_module("gcsbi.inference.infer")  # gcsbi.inference.infer is also the function


@pytest.fixture(scope="module")
def obs(toy_sim):  # noqa: F811
    with torch.random.fork_rng():
        torch.manual_seed(3)
        theta = toy_sim.prior.sample((8,))
    return toy_sim(theta, seed=3)


def test_huge_observation_flagged_with_a_reason(toy_posterior, obs):  # noqa: F811
    with pytest.warns(OutOfDistributionWarning, match="standard deviations"):
        dt = infer(toy_posterior, obs[0] * 1e30, num_samples=50)
    assert dt.attrs["ood_flag"] == 1 and dt.attrs["ood_pvalue"] == 0.0
    assert "standard deviations of the training x" in dt.attrs["ood_reason"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = infer(toy_posterior, obs, num_samples=50)
    assert len(ok.attrs["ood_reason"]) == len(obs) and not any(ok.attrs["ood_reason"])  # no reason: None or ""


def test_range_check_threshold_leaves_simulations_far_below(toy_posterior, obs):  # noqa: F811
    extent = toy_posterior.standardized_extent(obs)
    assert extent.dtype == torch.float64 and float(extent.max()) < 1e2 < infer_module.Z_MAX
    assert math.isinf(float(toy_posterior.standardized_extent(obs[:1] * float("nan"))[0]))
    assert infer_module.input_range_reasons(toy_posterior, obs * 1e7)[0] is not None


def test_mmd_runs_in_float64(toy_posterior, obs, monkeypatch):  # noqa: F811
    monkeypatch.setattr(infer_module, "Z_MAX", float("inf"), raising=False)  # only the MMD decides
    pv = infer_module.ood_pvalues(toy_posterior, obs[:1] * 1e25)  # embeddings ~1e26: finite in float32
    assert pv == [0.0]


def test_non_finite_inputs_and_embeddings_flagged(toy_posterior, obs, monkeypatch):  # noqa: F811
    bad = obs[:2].clone()
    bad[1, 0, 0, 0] = float("nan")
    assert infer_module.ood_pvalues(toy_posterior, bad)[1] == 0.0
    real = toy_posterior.embed
    monkeypatch.setattr(toy_posterior, "embed", lambda x, **kw: torch.full_like(real(x), float("inf")))
    assert infer_module.ood_pvalues(toy_posterior, obs[:1]) == [0.0]
    with pytest.warns(OutOfDistributionWarning, match="embedding is not finite"):
        dt = infer(toy_posterior, obs[0], num_samples=20)
    assert dt.attrs["ood_flag"] == 1 and "embedding" in dt.attrs["ood_reason"]


def test_sampler_breakdown_on_absurd_input_is_one_line(toy_posterior, obs):  # noqa: F811
    with pytest.raises(GcsbiValueError, match="out of the training distribution") as info:
        infer(toy_posterior, obs[0] * 1e20, num_samples=20)
    assert "\n" not in str(info.value) and "standard deviations" in str(info.value)
