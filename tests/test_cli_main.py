"""``gcsbi`` entry point: --version, Ctrl-C and one-line errors for environment failures."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import types

import pytest

import gcsbi
from gcsbi import cli
from gcsbi.errors import GcsbiFileError


@pytest.fixture
def boom(monkeypatch):
    """Register a command ``boom`` whose function raises the exception held in ``holder[0]``."""
    holder: list[BaseException] = []

    def run(args: argparse.Namespace) -> int:
        raise holder[0]

    def add_parser(sub):
        p = sub.add_parser("boom")
        p.set_defaults(func=run)
        return p

    monkeypatch.setitem(sys.modules, "_gcsbi_test_boom", types.SimpleNamespace(add_parser=add_parser))
    monkeypatch.setitem(cli.COMMANDS, "boom", "_gcsbi_test_boom")
    return holder


def test_version_from_package_metadata(capsys):
    expected = importlib.metadata.version("gcsbi")
    assert gcsbi.__version__ == expected
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"gcsbi {expected}"


def test_version_via_python_m():
    out = subprocess.run([sys.executable, "-m", "gcsbi", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"gcsbi {importlib.metadata.version('gcsbi')}"


def test_ctrl_c_is_one_line_and_130(boom, capsys):
    boom.append(KeyboardInterrupt())
    assert cli.main(["boom"]) == 130
    err = capsys.readouterr().err
    assert err == "gcsbi boom: interrupted\n"


@pytest.mark.parametrize("exc, text", [
    (GcsbiFileError("x.pt: corrupt"), "x.pt: corrupt"),
    (FileNotFoundError(2, "No such file or directory", "obs.fits"), "obs.fits"),
    (PermissionError(13, "Permission denied", "/out"), "Permission denied"),
    (UnicodeDecodeError("utf-8", b"\x89PNG", 0, 1, "invalid start byte"), "invalid start byte"),
])
def test_environment_errors_are_one_line(boom, capsys, exc, text):
    boom.append(exc)
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gcsbi boom: error: ") and text in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bugs_still_raise(boom):
    boom.append(ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["boom"])
