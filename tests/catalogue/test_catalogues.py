"""PHAT catalogue reading, name resolution and the Caldwell+2011 cross-match (need the shared data)."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.catalogue.catalogues import (caldwell_matched, catalogue_values, observation_from_row, read_phat_catalogue,
                                        resolve_cluster)
from gcsbi.errors import GcsbiFileError, GcsbiValueError


@pytest.fixture
def phat(shared_data):
    return read_phat_catalogue(shared_data / "m31" / "phat_ap_clusters_johnson2015.fits")


@pytest.mark.parametrize("name", ["B165", "b165", "G218", "B165-G218", " B 165 ", 166, "166", "APID 166", "AP166"])
def test_resolve_b165(phat, name):
    row = resolve_cluster(name, phat)
    assert int(row["APID"]) == 166
    assert str(row["AltID"]).strip() == "B165-G218"


def test_unknown_names(phat):
    with pytest.raises(GcsbiValueError, match="unknown cluster 'B1655'.*B165"):
        resolve_cluster("B1655", phat)
    with pytest.raises(GcsbiValueError, match="no cluster with APID"):
        resolve_cluster(999999, phat)
    with pytest.raises(GcsbiValueError, match="empty"):
        resolve_cluster("  ", phat)


def test_b165_values(phat):
    v = catalogue_values(resolve_cluster("B165", phat))
    np.testing.assert_allclose(v["mag"], [17.96, 17.23, 17.02, 15.64, 15.20, 14.63])  # F275W ... F160W
    assert v["reff"] == pytest.approx(0.62) and v["rap"] == pytest.approx(2.29)
    x = observation_from_row(resolve_cluster("B165", phat))
    assert x.shape == (14,) and np.all(np.isfinite(x))
    three = catalogue_values(resolve_cluster("B165", phat), bands=("F336W", "F475W", "F814W"))
    np.testing.assert_allclose(three["mag"], [17.23, 17.02, 15.64])


def test_bad_rows():
    row = {"APID": 1, "F336W": np.nan, "F475W": 20.0, "F814W": 19.0, "e_F336W": 0.1, "e_F475W": 0.1,
           "e_F814W": 0.1, "Reff": 0.5, "Rap": 1.5}
    v = catalogue_values(row)  # bands not observed are NaN and listed
    assert v["missing_bands"] == ["F275W", "F336W", "F110W", "F160W"] and np.isnan(v["mag"][1])
    with pytest.raises(GcsbiValueError, match="no magnitude in any"):
        catalogue_values({**row, "F475W": np.nan, "F814W": np.nan})
    row.update(F336W=21.0, Rap=np.nan)
    with pytest.raises(GcsbiValueError, match="Rap"):
        catalogue_values(row)
    row.update(Rap=1.5, e_F814W=np.nan)
    v = catalogue_values(row)  # missing error with a magnitude: model median, reported
    assert v["filled_errors"] == ["F814W"] and 0 < v["err"][3] < 1
    with pytest.raises(GcsbiValueError, match="missing error"):
        catalogue_values(row, missing_errors="raise")


def test_missing_file(tmp_path):
    with pytest.raises(GcsbiFileError, match="not found"):
        read_phat_catalogue(tmp_path / "nope.fits")


def test_caldwell_match(shared_data):
    m = shared_data / "m31"
    t = caldwell_matched(m / "phat_ap_clusters_johnson2015.fits", m / "caldwell2011_m31_old_clusters.dat")
    assert 110 <= len(t) <= 130
    assert np.isfinite(np.asarray(t["caldwell_log_mass"], float)).sum() >= 110
    assert np.all(np.asarray(t["sep_arcsec"]) <= 1.0)
    b165 = t[np.asarray(t["APID"]) == 166][0]
    assert str(b165["name"]).strip() == "B165-G218"
    assert b165["caldwell_log_mass"] == pytest.approx(5.61)
    assert b165["caldwell_feh"] == pytest.approx(-2.04)
    assert b165["caldwell_ebv"] == pytest.approx(0.15)
