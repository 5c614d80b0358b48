"""Hostile star tables: too few stars, no velocity errors, NaN, negative errors, zero radii, binary files.

Each must be a clear JeansValueError / JeansFileError (one line from ``gcsbi jeans``), raised before any
fitting starts, never a NaN profile.
"""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi_jeans.cli import main
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.io import MIN_STARS, StarTable, read_gaia_challenge, read_stars, read_table, read_walker
from gcsbi_jeans.errors import JeansFileError, JeansValueError
from gcsbi_jeans.jflow.config import FitConfig
from gcsbi_jeans.jflow.fit import fit_ensemble, fit_model

CFG = FitConfig(steps=1, n_model=8)


def _stars(n: int, seed: int = 0) -> StarTable:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 0.3, (2, n))
    return StarTable(x=x, y=y, v=rng.normal(0, 10, n), verr=np.ones(n), weight=np.ones(n))


def _write(path, header: str, columns: list[np.ndarray]):
    np.savetxt(path, np.column_stack(columns), header=header, fmt="%.6g")
    return path


def _table(tmp_path, n: int = 30, *, header: str = "x y v verr", seed: int = 0, **edit):
    rng = np.random.default_rng(seed)
    cols = {"x": rng.normal(0, 0.3, n), "y": rng.normal(0, 0.3, n), "v": rng.normal(0, 10, n),
            "verr": np.ones(n), "p": np.ones(n)}
    for key, (row, value) in edit.items():
        cols[key][row] = value
    return _write(tmp_path / "stars.txt", header, [cols[k] for k in header.split()])


@pytest.fixture
def no_fitting(monkeypatch):
    """Fail the test if a model is ever built (the refusal must come first)."""
    import gcsbi_jeans.jflow.fit as fit

    def boom(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(fit, "JeansFlowModel", boom)


def _jeans_error(capsys, sub: str = "fit") -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gcsbi-jeans {sub}: error: "), err
    return lines[0]


# ------------------------------------------------------------------ too few stars


def test_fits_refuse_fewer_than_min_stars(no_fitting):
    assert MIN_STARS == 20
    for n in (2, 3, 19):
        with pytest.raises(JeansValueError, match=f"need at least 20 stars, got {n}"):
            fit_model(_stars(n), parse_beta("iso"), CFG, progress=False)
        with pytest.raises(JeansValueError, match=f"need at least 20 stars, got {n}"):
            fit_ensemble(_stars(n), parse_beta("iso"), CFG, members=1, progress=False)


@pytest.mark.parametrize("command", ["fit", "baseline"])
def test_cli_refuses_three_stars_before_writing(tmp_path, capsys, command, no_fitting):
    table = _table(tmp_path, n=3)
    out = tmp_path / "out"
    assert main([command, str(table), "--out", str(out), "--steps", "1", "--no-progress"]) == 1
    assert "need at least 20 stars, got 3" in _jeans_error(capsys, command)
    assert not out.exists()


# ------------------------------------------------------------------ velocity errors


def test_table_without_error_column_needs_verr(tmp_path):
    table = _table(tmp_path, header="x y v")
    with pytest.raises(JeansValueError, match="no velocity-error column.*verr="):
        read_table(table)
    with pytest.raises(JeansValueError, match="no velocity-error column"):
        read_stars(table)
    assert np.all(read_stars(table, verr=1.5).verr == 1.5)
    assert np.all(read_stars(table, verr=0.0).verr == 0.0)  # exact velocities, said explicitly


def test_gaia_challenge_needs_verr(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "gaia.dat"
    np.savetxt(path, rng.normal(size=(25, 6)))  # x y z vx vy vz, no header, no errors
    with pytest.raises(JeansValueError, match="verr="):
        read_gaia_challenge(path)
    with pytest.raises(JeansValueError, match="verr="):
        read_stars(path)
    assert read_stars(path, verr=2.0).n == 25


def test_cli_table_without_error_column_names_the_option(tmp_path, capsys, no_fitting):
    table = _table(tmp_path, header="x y v")
    assert main(["fit", str(table), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "--verr" in _jeans_error(capsys)


@pytest.mark.parametrize("verr", [-1.0, float("nan"), float("inf")])
def test_bad_default_verr(tmp_path, verr):
    with pytest.raises(JeansValueError, match="verr"):
        read_table(_table(tmp_path, header="x y v"), default_verr=verr)


def test_negative_errors_name_the_row(tmp_path):
    verr = np.ones(30)
    verr[3:5] = (-1.0, -2.0)
    table = _write(tmp_path / "neg.txt", "x y v verr", [np.arange(30.0), np.ones(30), np.zeros(30), verr])
    with pytest.raises(JeansValueError, match=r"velocity errors must be >= 0.*2 stars.*data row 4"):
        read_table(table)


# ------------------------------------------------------------------ NaN, missing columns


@pytest.mark.parametrize("column", ["x", "v", "verr", "p"])
def test_nan_anywhere_is_refused_with_its_row(tmp_path, column):
    table = _table(tmp_path, header="x y v verr p", **{column: (4, np.nan)})
    with pytest.raises(JeansValueError, match=rf"NaN or inf.*row 5.*{column!r}"):
        read_table(table)


def test_nan_membership_is_not_silently_dropped(tmp_path):
    table = _table(tmp_path, header="x y v verr p", p=(0, np.nan))
    with pytest.raises(JeansValueError):
        read_stars(table)


def test_cli_missing_position_columns_is_one_line(tmp_path, capsys):
    table = _table(tmp_path, header="x v verr")
    assert main(["fit", str(table), "--out", str(tmp_path / "o")]) == 1
    assert "need x, y" in _jeans_error(capsys)


# ------------------------------------------------------------------ radii of zero, distances


def test_stars_all_at_the_centre_are_refused(tmp_path, no_fitting):
    table = _table(tmp_path, header="x y v verr")
    data = np.loadtxt(table)
    data[:20, :2] = 0.0  # more than half the stars at R = 0: zero half-number radius
    np.savetxt(table, data, header="x y v verr")
    stars = read_table(table)
    with pytest.raises(JeansValueError, match="R = 0"):
        fit_model(stars, parse_beta("iso"), CFG, progress=False)


def test_identical_velocities_are_refused(no_fitting):
    st = _stars(30)
    from dataclasses import replace

    with pytest.raises(JeansValueError, match="velocity spread"):
        fit_model(replace(st, v=np.zeros(30), verr=np.zeros(30)), parse_beta("iso"), CFG, progress=False)


@pytest.mark.parametrize("distance", [0.0, -76.0, float("nan")])
def test_walker_needs_a_positive_distance(tmp_path, distance):
    rng = np.random.default_rng(2)
    data = rng.normal(size=(25, 16))
    data[:, 6] += 100.0
    data[:, 15] = 1.0
    np.savetxt(tmp_path / "w.dat", data)
    with pytest.raises(JeansValueError, match="distance"):
        read_walker(tmp_path / "w.dat", distance_kpc=distance)


# ------------------------------------------------------------------ hostile files


def test_binary_file_is_a_file_error(tmp_path, capsys):
    bad = tmp_path / "stars.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage\n\x80\x81")
    for fmt in ("auto", "table", "gaia"):
        with pytest.raises(JeansFileError, match="stars.txt"):
            read_stars(bad, fmt=fmt, verr=1.0)
    assert main(["fit", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "stars.txt" in _jeans_error(capsys)
