"""``gcsbi jeans`` runs the separate gcsbi-jeans distribution's commands, and gcsbi.jeans forwards to it."""

from __future__ import annotations

import gcsbi.jeans
from gcsbi.cli import main


def test_gcsbi_jeans_command_runs_the_distribution(tmp_path, capsys):
    table = tmp_path / "m.txt"
    assert main(["jeans", "mock", "--n", "50", "--seed", "1", "--out", str(table)]) == 0
    assert table.is_file() and (tmp_path / "m.txt.truth.json").is_file()
    assert main(["jeans", "fit", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gcsbi jeans fit: error: no such file"), err


def test_gcsbi_jeans_forwards_names():
    import gcsbi_jeans

    assert gcsbi.jeans.StarTable is gcsbi_jeans.StarTable
