"""Anisotropy models and their parser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcsbi_jeans.core.beta import BaesVanHeseBeta, ConstantBeta, OsipkovMerrittBeta, parse_beta
from gcsbi_jeans.errors import JeansValueError
from gcsbi_jeans.jflow.sigma import SigmaRNet


@pytest.mark.parametrize(
    "spec, cls", [("iso", ConstantBeta), ("const:0.3", ConstantBeta), ("om:0.25", OsipkovMerrittBeta),
                  ("bvh:0,0.5,0.3", BaesVanHeseBeta), ("bvh:-0.2,0.6,0.3,3", BaesVanHeseBeta)])
def test_parse_and_roundtrip(spec, cls):
    b = parse_beta(spec)
    assert isinstance(b, cls)
    assert parse_beta(b.spec) == b


@pytest.mark.parametrize("spec", ["", "om", "om:-1", "const:1.5", "bvh:0,1", "foo:1", "om:x", "const:nan"])
def test_bad_specs_raise(spec):
    with pytest.raises(JeansValueError):
        parse_beta(spec)


def test_om_values_and_torch_numpy_agree():
    b = OsipkovMerrittBeta(r_a=0.5)
    r = np.array([0.1, 0.5, 2.0])
    np.testing.assert_allclose(b(r), r**2 / (r**2 + 0.25))
    np.testing.assert_allclose(b(torch.tensor(r)).numpy(), b(r))


@pytest.mark.parametrize("spec", ["const:-0.4", "om:0.3", "bvh:0.1,0.7,0.4,2.5"])
def test_log_g_derivative_is_two_beta_over_r(spec):
    b = parse_beta(spec)
    lr = np.linspace(np.log(0.01), np.log(10), 2001)
    dlg = np.gradient(b.log_g(np.exp(lr)), lr)
    np.testing.assert_allclose(dlg[5:-5], 2 * b(np.exp(lr))[5:-5], atol=1e-4)


def test_bvh_limits():
    b = BaesVanHeseBeta(beta0=-0.3, beta_inf=0.8, r_a=1.0, eta=2.0)
    assert b(np.array([1e-4]))[0] == pytest.approx(-0.3, abs=1e-6)
    assert b(np.array([1e4]))[0] == pytest.approx(0.8, abs=1e-6)


def test_sigma_net_positive_and_starts_near_one():
    torch.manual_seed(0)
    net = SigmaRNet(hidden=8, layers=2)
    s2 = net(torch.linspace(-5, 5, 50))
    assert torch.all(s2 > 0)
    assert float(s2.mean().detach()) == pytest.approx(1.0, abs=0.3)
