"""gcsbi.jeans: the Jeans analysis is its own distribution, ``gcsbi-jeans`` (``import gcsbi_jeans``).

This module only forwards: ``gcsbi.jeans.fit_freeform`` is ``gcsbi_jeans.fit_freeform``, and ``gcsbi jeans ...``
runs ``gcsbi-jeans ...``. Without gcsbi-jeans installed, both say how to install it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import GcsbiDependencyError

__all__ = ["add_parser"]

_HINT = "the Jeans analysis is the separate distribution gcsbi-jeans: pip install ./jeans (the Makefile does)"


def _impl():
    try:
        return importlib.import_module("gcsbi_jeans")
    except ImportError as exc:
        raise GcsbiDependencyError(_HINT) from exc


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Mount ``gcsbi-jeans``'s commands as ``gcsbi jeans``; a stub that explains itself when it is missing."""
    try:
        cli = importlib.import_module("gcsbi_jeans.cli")
    except ImportError:
        p = subparsers.add_parser("jeans", help="Jeans analysis (needs gcsbi-jeans)")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda a: (print(f"gcsbi jeans: error: {_HINT}", file=sys.stderr), 1)[1])
        return p
    return cli.add_parser(subparsers)


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_impl(), name)
