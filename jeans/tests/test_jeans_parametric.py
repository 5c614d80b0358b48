"""Parametric Jeans model (numpy): Zhao masses and LOS dispersions against independent quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from gcsbi_jeans.core.beta import OsipkovMerrittBeta, parse_beta
from gcsbi_jeans.core.parametric import G_KPC_KMS2_MSUN, plummer_density, sigma_los_parametric, zhao_density, zhao_mass


@pytest.mark.parametrize("abg", [(1, 3, 0), (1, 3, 1), (2, 5, 0.1), (1.5, 4, 0.7)])
def test_zhao_mass_against_quad(abg):
    a, b, g = abg
    for r in (0.1, 1.0, 7.0):
        ref = quad(lambda s: 4 * math.pi * s**2 * zhao_density(s, 3e7, 0.8, a, b, g), 0, r, limit=200)[0]
        assert zhao_mass(r, 3e7, 0.8, a, b, g) == pytest.approx(ref, rel=1e-6)


def test_om_sigma_los_against_direct_quadrature():
    a, ra = 0.25, 0.3
    beta = OsipkovMerrittBeta(r_a=ra)
    mass = lambda r: zhao_mass(r, 4e8, 1.0, 1, 3, 0)  # noqa: E731
    nu = lambda r: plummer_density(r, a)  # noqa: E731
    R = np.array([0.05, 0.25, 0.8])
    sig, slos = sigma_los_parametric(R, nu=nu, mass=mass, beta=beta, r_min=1e-4, r_max=300.0, n_r=800, n_t=400)

    def nus2(r):  # OM: g = r^2 + ra^2
        return quad(lambda s: (s**2 + ra**2) * nu(s) * G_KPC_KMS2_MSUN * mass(s) / s**2, r, 300.0,
                    limit=200)[0] / (r**2 + ra**2)

    for Ri, si in zip(R, slos):
        num = quad(lambda r: (1 - beta(r) * Ri**2 / r**2) * nus2(r) * r / math.sqrt(r**2 - Ri**2), Ri * (1 + 1e-9),
                   50.0, limit=200)[0]
        den = quad(lambda r: nu(r) * r / math.sqrt(r**2 - Ri**2), Ri * (1 + 1e-9), 300.0, limit=200)[0]
        assert si == pytest.approx(math.sqrt(num / den), rel=5e-3)


def test_radial_anisotropy_raises_central_dispersion():
    mass = lambda r: zhao_mass(r, 4e8, 1.0, 1, 3, 0)  # noqa: E731
    nu = lambda r: plummer_density(r, 0.25)  # noqa: E731
    R = np.array([0.02])
    iso = sigma_los_parametric(R, nu=nu, mass=mass, beta=parse_beta("iso"), r_min=1e-4, r_max=100)[1]
    rad = sigma_los_parametric(R, nu=nu, mass=mass, beta=parse_beta("const:0.5"), r_min=1e-4, r_max=100)[1]
    assert rad[0] > 1.05 * iso[0]
