"""IMF: normalisation, slope recovery, explicit seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from gcsbi.errors import GcsbiValueError
from gcsbi.stars import IMF


def _truncated_powerlaw_slope(m: np.ndarray, lo: float, hi: float) -> float:
    """Maximum-likelihood slope alpha of dN/dm ~ m^-alpha on [lo, hi]."""
    x = m[(m >= lo) & (m <= hi)]
    s = np.sum(np.log(x))

    def nll(a: float) -> float:
        norm = (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)
        return a * s + x.size * np.log(norm)

    return float(minimize_scalar(nll, bounds=(0.2, 4.0), method="bounded").x)


@pytest.mark.parametrize("lo,hi,alpha", [(1.0, 100.0, 2.3), (0.1, 0.5, 1.3)])
def test_kroupa_slope_recovered(rng, lo, hi, alpha):
    m = IMF("kroupa").sample(200_000, rng, m_lo=lo, m_hi=hi)
    a = _truncated_powerlaw_slope(m, lo, hi)
    assert abs(a - alpha) < 0.03, a


def test_chabrier_high_mass_slope_and_peak(rng):
    imf = IMF("chabrier")
    a = _truncated_powerlaw_slope(imf.sample(200_000, rng, m_lo=1.0, m_hi=100.0), 1.0, 100.0)
    assert abs(a - 2.3) < 0.03
    lm = np.linspace(-1, 0, 201)
    dn_dlogm = imf.pdf(10**lm) * 10**lm
    assert -1.0 <= lm[np.argmax(dn_dlogm)] < -0.9  # log-normal peak (0.079 M_sun) below our 0.1 M_sun cut


def test_normalised_per_solar_mass():
    imf = IMF("kroupa")
    assert imf.mass(imf.m_max) == pytest.approx(1.0)
    assert 0.55 < imf.mean_mass < 0.75


def test_same_seed_same_bytes():
    a = IMF().sample(1000, np.random.default_rng(7))
    b = IMF().sample(1000, np.random.default_rng(7))
    assert a.tobytes() == b.tobytes()


def test_bad_arguments():
    with pytest.raises(GcsbiValueError):
        IMF("salpeter")
    with pytest.raises(GcsbiValueError):
        IMF().sample(10, np.random.default_rng(0), m_lo=5.0, m_hi=2.0)
