"""Contract test over every shipped prior, plus bad-spec handling."""

from __future__ import annotations

import math

import pytest
import torch

from gcsbi.errors import GcsbiFileError, GcsbiValueError, SpecError
from gcsbi.spec.priors import load_prior
from gcsbi.spec.resources import available_specs

PRIORS = available_specs("priors")


def test_shipped_priors_exist():
    assert {"m31-gc", "milky-way-gc"} <= set(PRIORS)


@pytest.mark.parametrize("name", PRIORS)
def test_prior_contract(name, torch_seed):
    from sbi.utils.user_input_checks import process_prior

    prior = load_prior(name)
    theta = prior.sample((64,))
    assert theta.dtype == torch.float32 and theta.shape == (64, len(prior.names))
    assert prior.in_support(theta).all()
    lp = prior.log_prob(theta)
    assert torch.allclose(lp, torch.full_like(lp, -torch.log(prior.high - prior.low).sum()))
    outside = theta.clone()
    outside[0, 0] = prior.high[0] + 1.0
    assert prior.log_prob(outside)[0] == -math.inf
    assert not prior.in_support(outside)[0]
    processed, n_params, _ = process_prior(prior)
    assert n_params == len(prior.names)
    d = prior.to_dict(theta)
    assert torch.equal(prior.from_dict(d), theta)
    assert set(prior.units) == set(prior.names)


def test_m31_prior_covers_metal_rich_clusters():
    prior = load_prior("m31-gc")
    i = prior.names.index("feh")
    assert prior.low[i] <= -2.5 and prior.high[i] >= 0.3


def test_bad_theta():
    prior = load_prior("m31-gc")
    with pytest.raises(GcsbiValueError, match="shape"):
        prior.check(torch.zeros(3, 2))
    with pytest.raises(GcsbiValueError, match="NaN"):
        prior.check(torch.full((1, len(prior.names)), float("nan")))
    with pytest.raises(GcsbiValueError, match="missing"):
        prior.from_dict({"feh": 0.0})


@pytest.mark.parametrize(
    "text, match",
    [
        ("name='x'\nfoo=1\n[parameters.a]\nlow=0\nhigh=1\n", "unknown keys"),
        ("[parameters.a]\nlow=0\nhigh=1\nscale='log'\n", "unknown keys"),
        ("[parameters.a]\nlow=1\nhigh=0\n", "low < high"),
        ("[parameters.a]\nlow='x'\nhigh=0\n", "numeric"),
        ("name='x'\n", "parameters"),
        ("[parameters.a\n", "invalid TOML"),
    ],
)
def test_bad_prior_files(tmp_path, text, match):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=match):
        load_prior(path)


def test_unknown_prior_name_lists_shipped():
    with pytest.raises(SpecError, match="m31-gc"):
        load_prior("andromeda-xyz")
    with pytest.raises(GcsbiFileError):
        load_prior("/nonexistent/prior.toml")


def test_reference_cluster_b165_is_a_point_of_the_m31_prior():
    from gcsbi.spec import reference_cluster

    ref = reference_cluster("B165")
    prior = load_prior("m31-gc")
    assert tuple(ref) == prior.names
    assert ref["distance_kpc"] == 776.0 and ref["log10_mass"] == 5.3 and ref["feh"] == -1.6
    assert bool(prior.in_support(prior.from_dict(ref)).all())
    with pytest.raises(SpecError, match="no reference cluster 'G1'.*B165"):
        reference_cluster("G1")


@pytest.mark.parametrize(
    "ref, match",
    [
        ("a = 0.5\nb = 2.0\n", r"reference_clusters\.R\.b = 2\.0 must be a number in"),
        ("a = 0.5\n", r"missing parameters \['b'\]"),
        ("a = 0.5\nb = 0.5\nc = 1\n", r"unknown keys \['c'\]"),
    ],
)
def test_bad_reference_clusters(tmp_path, ref, match):
    from gcsbi.spec import reference_cluster

    path = tmp_path / "p.toml"
    path.write_text(f"[parameters.a]\nlow=0\nhigh=1\n[parameters.b]\nlow=0\nhigh=1\n[reference_clusters.R]\n{ref}")
    with pytest.raises(SpecError, match=match):
        load_prior(path)
    with pytest.raises(SpecError, match=match):
        reference_cluster("R", prior=path)
