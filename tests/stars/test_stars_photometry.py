"""Filters, extinction coefficients and bolometric corrections (incl. the HST/JWST transfer error)."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.errors import UnknownFilterError
from gcsbi.stars import FILTERS, extinction_coefficients, solar_absolute_magnitudes
from gcsbi.stars.bolometric import MBOL_SUN, bolometric_corrections, leave_one_out_errors
from gcsbi.stars.filters import filter_info


def test_unknown_filter_lists_supported():
    with pytest.raises(UnknownFilterError) as exc:
        extinction_coefficients(("V", "F999W"))
    assert "F999W" in str(exc.value) and "F336W" in str(exc.value)


def test_extinction_coefficients_follow_the_law():
    r = extinction_coefficients()
    assert 2.9 < r["V"] < 3.2 and 0.9 < r["B"] - r["V"] < 1.1
    by_wave = sorted(FILTERS, key=lambda f: filter_info(f).pivot_angstrom)
    vals = [r[f] for f in by_wave]
    assert all(a > b for a, b in zip(vals, vals[1:]))  # monotonic in wavelength (optical-IR)


def test_sun_absolute_magnitudes():
    bc = bolometric_corrections(np.log10([5772.0]), [4.438], 0.0, FILTERS)[0]
    ours = dict(zip(FILTERS, MBOL_SUN - bc))
    sedpy_sun = solar_absolute_magnitudes()
    assert abs(sedpy_sun["V"] - 4.81) < 0.03  # Willmer (2018)
    for f in ("V", "B", "I", "F475W", "F814W", "F115W"):  # MIST/C3K tables vs the solar spectrum
        assert abs(ours[f] - sedpy_sun[f]) < 0.1, (f, ours[f], sedpy_sun[f])


def test_transfer_leave_one_out_error():
    err = leave_one_out_errors()
    for band in ("Bessell_V", "Bessell_R", "Bessell_I", "SDSS_z", "2MASS_J", "WISE_W1"):
        assert err[band][1] < 0.06, (band, err[band])
    assert err["SDSS_u"][1] < 0.15
