"""``gcsbi bank``: create, fill (resumable, parallel), inspect and repair simulation banks.

Examples::

    gcsbi bank create banks/phat.zarr --factory gcsbi.simulator:load_simulator \\
        --kwargs '{"spec": "hst-phat", "prior": "m31-gc"}' --n 100000 --chunk-size 256 --seed 1
        [--truth mass_map,clean]                 # also store the truth maps of every row
    gcsbi bank generate banks/phat.zarr --workers 8            # kill it any time, run it again
    gcsbi bank generate banks/phat.zarr --scheduler tcp://head:8786   # Dask; shared filesystem
    gcsbi bank info banks/phat.zarr --json      # reads every chunk: exit 1 if any is damaged
    gcsbi bank repair banks/phat.zarr           # recompute damaged chunks (same bytes as before)
    gcsbi bank invalidate banks/phat.zarr 4 7   # mark chunks 4 and 7 for recomputation

Only gcsbi's own simulator factories run by default; ``--trust-factory`` (or the
environment variable GCSBI_TRUSTED_FACTORIES=module:function,...) runs another one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import GcsbiFileError, GcsbiValueError
from ..outputs import printable

__all__ = ["add_parser"]


def _add_generate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask distributed scheduler, e.g. tcp://host:8786 (the bank must be on a shared filesystem)")
    p.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")
    p.add_argument("--trust-factory", action="store_true",
                   help="run the bank's simulator factory even if it is not one of gcsbi's own (it runs code)")


def _summary(bank: Any, computed: int) -> None:
    info = bank.info()
    print(f"{bank.path}: computed {computed} chunks; {info['chunks_done']}/{info['n_chunks']} chunks done, "
          f"{info['rows_failed']} failed rows")


def _generate(bank: Any, args: argparse.Namespace) -> None:
    computed = bank.generate(workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress,
                             trust_factory=args.trust_factory)
    _summary(bank, computed)


def _cmd_create(args: argparse.Namespace) -> int:
    from .store import SimulationBank

    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as exc:
        raise GcsbiValueError(f"--kwargs must be a JSON object: {exc}") from exc
    if not isinstance(kwargs, dict):
        raise GcsbiValueError(f"--kwargs must be a JSON object, got {args.kwargs!r}")
    bank = SimulationBank.create(args.path, simulator_factory=args.factory, factory_kwargs=kwargs, n=args.n,
                                 chunk_size=args.chunk_size, seed=args.seed, overwrite=args.overwrite,
                                 trust_factory=args.trust_factory, truth=args.truth)
    print(f"created {printable(repr(bank))}")
    if args.generate:
        _generate(bank, args)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .store import SimulationBank

    _generate(SimulationBank.open(args.path), args)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the configuration and progress; unless --no-verify, read every chunk (exit 1 if damaged)."""
    from .store import SimulationBank
    from .factory import is_trusted

    bank = SimulationBank.open(args.path)
    info = bank.info()
    damaged = None if args.no_verify else bank.verify(progress=not args.no_progress)
    if damaged is not None:
        info["damaged_chunks"] = damaged
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        # every string below was read from the bank (untrusted): printed escaped, never raw
        for key in ("path", "simulator_factory", "factory_kwargs", "n", "chunk_size", "seed", "param_names",
                    "output_shape", "gcsbi_version"):
            note = "" if key != "simulator_factory" or is_trusted(info[key]) else "  (not trusted: needs --trust-factory)"
            print(f"{key:18s} {printable(info[key])}{note}")
        print(f"{'chunks done':18s} {info['chunks_done']}/{info['n_chunks']}")
        print(f"{'rows done':18s} {info['rows_done']}/{info['n']} ({info['rows_failed']} failed)")
        checked = "not checked (--no-verify)" if damaged is None else (damaged or "none")
        print(f"{'damaged chunks':18s} {checked}")
        for entry in bank.failures()[:10]:
            print(f"  failed row {entry['row']}: {printable(entry['message'])}")
    if damaged:
        shown = str(damaged) if len(damaged) <= 10 else f"{damaged[:10]} ... ({len(damaged)} in all)"
        by_hand = (f", or `gcsbi bank invalidate {bank.path} {' '.join(map(str, damaged))}` then "
                   f"`gcsbi bank generate {bank.path}`") if len(damaged) <= 10 else ""
        raise GcsbiFileError(f"{bank.path}: chunks {shown} are damaged or missing (checksums do not match); "
                             f"run `gcsbi bank repair {bank.path}`{by_hand}")
    return 0


def _cmd_invalidate(args: argparse.Namespace) -> int:
    from .store import SimulationBank

    bank = SimulationBank.open(args.path)
    bank.invalidate(args.chunks)
    print(f"{bank.path}: chunks {sorted(set(args.chunks))} marked for recomputation; "
          f"run `gcsbi bank generate {bank.path}`")
    return 0


def _cmd_repair(args: argparse.Namespace) -> int:
    from .store import SimulationBank

    bank = SimulationBank.open(args.path)
    damaged, computed = bank.repair(workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress,
                                    trust_factory=args.trust_factory)
    print(f"{bank.path}: damaged chunks {damaged} recomputed" if damaged else f"{bank.path}: no damaged chunks")
    _summary(bank, computed)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``gcsbi bank {create,generate,info,invalidate,repair}``."""
    p = subparsers.add_parser("bank", help="simulation banks on disk (Zarr): create, generate, info, repair",
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
    c.add_argument("--overwrite", action="store_true",
                   help="replace an existing gcsbi bank at PATH (only a bank: another folder or a file is refused)")
    c.add_argument("--truth", default="", metavar="NAMES",
                   help="comma-separated truth maps to store per row (e.g. mass_map,clean; the simulator's truth_shapes)")
    c.add_argument("--generate", action="store_true", help="fill the bank right away")
    _add_generate_options(c)
    c.set_defaults(func=_cmd_create)

    g = sub.add_parser("generate", help="compute the missing chunks (resumable)")
    g.add_argument("path")
    _add_generate_options(g)
    g.set_defaults(func=_cmd_generate)

    i = sub.add_parser("info", help="configuration, progress and integrity of a bank (exit 1 if damaged)")
    i.add_argument("path")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.add_argument("--no-verify", action="store_true",
                   help="do not read every chunk to check its checksums (quick, for big banks)")
    i.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")
    i.set_defaults(func=_cmd_info)

    v = sub.add_parser("invalidate", help="mark chunks for recomputation by the next generate")
    v.add_argument("path")
    v.add_argument("chunks", type=int, nargs="+", metavar="CHUNK", help="chunk indices")
    v.set_defaults(func=_cmd_invalidate)

    r = sub.add_parser("repair", help="verify, invalidate the damaged chunks and generate (same bytes)")
    r.add_argument("path")
    _add_generate_options(r)
    r.set_defaults(func=_cmd_repair)

    def _no_action(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_no_action)
    return p
