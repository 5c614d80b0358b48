"""Command-line interface: ``gcsbi <command> ...``; thin, each command lives with its stage.

Exit status: 0 success, 1 a one-line error (a :class:`~gcsbi.errors.GcsbiError`, or an
``OSError``/``UnicodeDecodeError`` from reading or writing files), 2 usage error, 130 Ctrl-C.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

# command name -> module exposing ``add_parser(subparsers)``, or "module:function" naming the
# function that adds that one sub-parser; each sub-parser sets ``func``.
# Imported lazily so that ``gcsbi jeans`` never loads the image code and vice versa.
COMMANDS: dict[str, str] = {
    "population": "gcsbi.stars.cli",
    "snapshot": "gcsbi.clusters.cli",
    "jeans": "gcsbi.jeans",
    "train": "gcsbi.inference.cli:add_train_parser",
    "infer": "gcsbi.inference.cli:add_infer_parser",
    "calibrate": "gcsbi.inference.cli:add_calibrate_parser",
    "bank": "gcsbi.bank.cli",
    "simulate": "gcsbi.simulator.cli",
    "m31": "gcsbi.catalogue.cli",
}


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="gcsbi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gcsbi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands if commands is not None else COMMANDS:
        module, _, func = COMMANDS[name].partition(":")
        getattr(importlib.import_module(module), func or "add_parser")(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only import the module of the command asked for (fast start, no cross-stage imports).
    wanted = [argv[0]] if argv and argv[0] in COMMANDS else [] if argv[:1] == ["--version"] else None
    parser = build_parser(wanted)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .errors import GcsbiError
    from .outputs import printable  # messages may quote file contents: no raw control characters

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"gcsbi {args.command}: interrupted", file=sys.stderr)
        return 130
    except GcsbiError as exc:
        print(f"gcsbi {args.command}: error: {printable(exc)}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:  # a binary file read as text
        print(f"gcsbi {args.command}: error: cannot decode input as text: {printable(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # missing file, permission denied, disk full: the environment, not a bug
        print(f"gcsbi {args.command}: error: {printable(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
