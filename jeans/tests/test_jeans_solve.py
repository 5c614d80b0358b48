"""Jeans solution by autograd and LOS projection, checked on an analytic self-consistent Plummer sphere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gcsbi_jeans.core.beta import ConstantBeta
from gcsbi_jeans.errors import JeansValueError
from gcsbi_jeans.jflow.solve import G_KPC_KMS2_MSUN, jeans_profiles, projected_profiles

A, MTOT = 0.3, 1.0e8


class _Plummer(nn.Module):
    """Stand-in with the model interface: isotropic self-gravitating Plummer sphere."""

    def __init__(self):
        super().__init__()
        self.beta = ConstantBeta(0.0)
        self.L, self.V = A, 10.0
        self.dummy = nn.Parameter(torch.zeros(()))

    def log_n(self, r):
        return math.log(3 / (4 * math.pi * A**3)) - 2.5 * torch.log1p((r / A) ** 2) + 0 * self.dummy

    def sigma_r2(self, r):
        return G_KPC_KMS2_MSUN * MTOT / (6 * A) / torch.sqrt(1 + (r / A) ** 2) + 0 * self.dummy


def test_mass_density_and_slope_of_plummer():
    r = np.geomspace(0.03, 3.0, 15)
    p = jeans_profiles(_Plummer(), r)
    m_true = MTOT * r**3 / (r**2 + A**2) ** 1.5
    rho_true = 3 * MTOT / (4 * math.pi * A**3) * (1 + (r / A) ** 2) ** -2.5
    np.testing.assert_allclose(p["mass"], m_true, rtol=1e-6)
    np.testing.assert_allclose(p["rho"], rho_true, rtol=1e-6)
    np.testing.assert_allclose(p["slope"], -5 * r**2 / (r**2 + A**2), atol=1e-6)


def test_projection_of_plummer():
    R = np.geomspace(0.03, 2.0, 8)
    q = projected_profiles(_Plummer(), R, n_z=400)
    s2_true = 3 * math.pi * G_KPC_KMS2_MSUN * MTOT / (64 * A) / np.sqrt(1 + (R / A) ** 2)
    np.testing.assert_allclose(q["sigma_los"] ** 2, s2_true, rtol=2e-3)
    np.testing.assert_allclose(q["Sigma"], 1 / (math.pi * A**2) * (1 + (R / A) ** 2) ** -2, rtol=2e-3)


@pytest.mark.parametrize("bad", [np.array([0.1]), np.array([0.1, -1.0]), np.array([[0.1, 0.2]]),
                                 np.array([0.1, np.nan])])
def test_bad_radii(bad):
    with pytest.raises(JeansValueError):
        jeans_profiles(_Plummer(), bad)


def test_profiles_leave_the_model_untouched(torch_seed):
    from gcsbi_jeans.core.beta import parse_beta
    from gcsbi_jeans.jflow.config import FlowConfig
    from gcsbi_jeans.jflow.model import JeansFlowModel

    m = JeansFlowModel(beta=parse_beta("om:0.3"), length_scale=0.3, velocity_scale=10.0,
                       flow=FlowConfig(hidden=8, ode_steps=4))
    before = [p.detach().clone() for p in m.parameters()]
    p = jeans_profiles(m, np.array([0.1, 0.3, 1.0]))
    q = projected_profiles(m, np.array([0.1, 0.3]))
    assert all(x.dtype == torch.float32 and torch.equal(x, y) for x, y in zip(m.parameters(), before))
    assert np.all(np.isfinite(p["rho"])) and np.all(q["sigma_los"] > 0)
