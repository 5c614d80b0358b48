"""The band list is defined once: every band a spec may name has a filter curve and magnitudes."""

from __future__ import annotations

from gcsbi.spec.simulator_spec import KNOWN_FILTERS
from gcsbi.stars.filters import FILTERS, SEDPY_NAMES


def test_specs_and_photometry_share_one_band_list():
    assert FILTERS is KNOWN_FILTERS
    assert set(SEDPY_NAMES) == set(FILTERS)
