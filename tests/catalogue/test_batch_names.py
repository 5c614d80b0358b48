"""``gcsbi m31 batch --names``: the batch on a list of clusters (comma-separated or @file), unknown names refused."""

from __future__ import annotations


import numpy as np
import pytest

from gcsbi.errors import GcsbiValueError
from test_progress import _run  # the CLI with captured output (tests/ is on sys.path)


def test_select_clusters_order_aliases_and_errors():
    from gcsbi.catalogue.catalogues import caldwell_matched, read_phat_catalogue, select_clusters

    phat = read_phat_catalogue()
    sub = select_clusters(phat, ["M085", "b165", "AP166", "B086-G148", "166"])  # aliases of one cluster: once
    assert list(sub["APID"]) == [2, 166, 3795]
    with pytest.raises(GcsbiValueError, match=r"unknown cluster name\(s\) 'B012', 'NOPE' \(not an APID"):
        select_clusters(phat, ["B165", "B012", "NOPE"])
    with pytest.raises(GcsbiValueError, match=r"M085 \(APID 2\) not in the Caldwell sample"):
        select_clusters(caldwell_matched(), ["B086", "M085"], catalogue=phat, sample="the Caldwell sample")
    with pytest.raises(GcsbiValueError, match="no cluster names"):
        select_clusters(phat, [])


def test_batch_names_cli(tmp_path, capsys):
    from astropy.table import Table

    names = tmp_path / "names.txt"
    names.write_text("# clusters to fit\nB165   # the reference cluster\n\nM085, 166\n", encoding="utf-8")
    out = tmp_path / "r.ecsv"
    rc, stdout, err = _run(["m31", "batch", "--names", f"@{names}", "--num-samples", "50", "--out", str(out),
                            "--no-progress"], capsys)
    assert rc == 0, err
    assert err == ""  # --no-progress: nothing at all on stderr
    assert "of 2 clusters" in stdout
    res = Table.read(out)
    assert list(res["APID"]) == [166, 2] and res.meta["NSAMPLES"] == 50
    assert np.isfinite(res["log10_mass_p50"][0])

    rc, stdout, err = _run(["m31", "batch", "--names", "B165", "--num-samples", "20", "--out", str(out)], capsys)
    assert rc == 0 and "clusters" in err  # the progress bar, on stderr
    assert list(Table.read(out)["APID"]) == [166]

    rc, stdout, err = _run(["m31", "batch", "--names", "B165,B012,FOO", "--out", str(tmp_path / "x.ecsv")], capsys)
    assert rc == 1 and err.count("\n") == 1 and "'B012', 'FOO'" in err and "B165" not in err
    rc, stdout, err = _run(["m31", "batch", "--names", "M085", "--sample", "caldwell", "--out",
                            str(tmp_path / "x.ecsv")], capsys)
    assert rc == 1 and "M085 (APID 2) not in the Caldwell+2011-matched sample" in err
    rc, stdout, err = _run(["m31", "batch", "--names", f"@{tmp_path / 'missing.txt'}", "--out",
                            str(tmp_path / "x.ecsv")], capsys)
    assert rc == 1 and "cannot read the list of names" in err
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    rc, stdout, err = _run(["m31", "batch", "--names", f"@{tmp_path / 'empty.txt'}", "--out",
                            str(tmp_path / "x.ecsv")], capsys)
    assert rc == 1 and "lists no cluster name" in err
    assert not (tmp_path / "x.ecsv").exists()
    # a batch outside the Caldwell sample has nothing to compare: one line, not a traceback
    rc, stdout, err = _run(["m31", "compare", str(out)], capsys)
    assert rc == 1 and err.count("\n") == 1 and "--sample caldwell" in err
