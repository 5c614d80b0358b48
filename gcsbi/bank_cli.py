"""``gcsbi bank``: create, fill (resumable, parallel) and inspect simulation banks.

Examples::

    gcsbi bank create banks/phat.zarr --factory gcsbi.simulator:load_simulator \\
        --kwargs '{"spec": "hst-phat", "prior": "m31-gc"}' --n 100000 --chunk-size 256 --seed 1
    gcsbi bank generate banks/phat.zarr --workers 8            # kill it any time, run it again
    gcsbi bank generate banks/phat.zarr --scheduler tcp://head:8786   # Dask; shared filesystem
    gcsbi bank info banks/phat.zarr --json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .errors import GcsbiValueError

__all__ = ["add_parser"]


def _add_generate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask distributed scheduler, e.g. tcp://host:8786 (the bank must be on a shared filesystem)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _generate(bank: Any, args: argparse.Namespace) -> None:
    computed = bank.generate(workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress)
    info = bank.info()
    print(f"{bank.path}: computed {computed} chunks; {info['chunks_done']}/{info['n_chunks']} chunks done, "
          f"{info['rows_failed']} failed rows")


def _cmd_create(args: argparse.Namespace) -> int:
    from .bank import SimulationBank

    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as exc:
        raise GcsbiValueError(f"--kwargs must be a JSON object: {exc}") from exc
    if not isinstance(kwargs, dict):
        raise GcsbiValueError(f"--kwargs must be a JSON object, got {args.kwargs!r}")
    bank = SimulationBank.create(args.path, simulator_factory=args.factory, factory_kwargs=kwargs, n=args.n,
                                 chunk_size=args.chunk_size, seed=args.seed, overwrite=args.overwrite)
    print(f"created {bank!r}")
    if args.generate:
        _generate(bank, args)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .bank import SimulationBank

    _generate(SimulationBank.open(args.path), args)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .bank import SimulationBank

    bank = SimulationBank.open(args.path)
    info = bank.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("path", "simulator_factory", "factory_kwargs", "n", "chunk_size", "seed", "param_names",
                "output_shape", "gcsbi_version"):
        print(f"{key:18s} {info[key]}")
    print(f"{'chunks done':18s} {info['chunks_done']}/{info['n_chunks']}")
    print(f"{'rows done':18s} {info['rows_done']}/{info['n']} ({info['rows_failed']} failed)")
    for entry in bank.failures()[:10]:
        print(f"  failed row {entry['row']}: {entry['message']}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``gcsbi bank {create,generate,info}``."""
    p = subparsers.add_parser("bank", help="simulation banks on disk (Zarr): create, generate, info",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="bank_command", metavar="ACTION")

    c = sub.add_parser("create", help="create an empty bank (optionally fill it with --generate)")
    c.add_argument("path")
    c.add_argument("--factory", required=True, metavar="MODULE:FUNCTION",
                   help="importable simulator factory, e.g. gcsbi.simulator:load_simulator")
    c.add_argument("--kwargs", default="{}", metavar="JSON", help="factory keyword arguments (JSON object)")
    c.add_argument("--n", type=int, required=True, help="number of simulations")
    c.add_argument("--chunk-size", type=int, default=256, help="rows per chunk (unit of work and of storage)")
    c.add_argument("--seed", type=int, required=True, help="master seed (the bank's bytes depend only on it)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing bank at PATH")
    c.add_argument("--generate", action="store_true", help="fill the bank right away")
    _add_generate_options(c)
    c.set_defaults(func=_cmd_create)

    g = sub.add_parser("generate", help="compute the missing chunks (resumable)")
    g.add_argument("path")
    _add_generate_options(g)
    g.set_defaults(func=_cmd_generate)

    i = sub.add_parser("info", help="configuration and progress of a bank")
    i.add_argument("path")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)

    def _no_action(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_no_action)
    return p
