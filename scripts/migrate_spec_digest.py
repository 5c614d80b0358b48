"""Re-stamp checkpoints with the current content hash of their simulator spec.

A checkpoint stores ``meta["spec"]["simulator"]["sha256"]``, :func:`gcsbi.simulator.spec_digest`
of the simulator spec it was trained on, and ``load_posterior(..., expected_spec=sim.spec)``
refuses it once the spec's content changes. Some edits change the content but not one pixel of
the simulated images (a value made explicit that equals the old default, a renamed option). For
those, this script sets ``sha256`` to the digest of the current shipped spec named in
``meta["spec"]["simulator"]["name"]``; a checkpoint that stores the spec's file path in
``source`` instead has that key replaced by ``sha256``. Nothing else changes: the weights, the
reference embeddings, the other payload keys and the rest of the metadata are copied as they are
(the script checks this before it replaces the file).

Only run it after checking that the spec edit leaves the images byte-identical: simulate a few
prior draws with a fixed seed before and after the edit and compare them with
``numpy.array_equal``. Otherwise the posterior must be retrained.

    python scripts/migrate_spec_digest.py [--dry-run] gcsbi/data/posteriors/*.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gcsbi.simulator.core import spec_digest
from gcsbi.spec.simulator_spec import load_simulator_spec


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )


def _check_only_digest_changed(old: dict, new: dict) -> None:
    """Raise unless ``new`` equals ``old`` but for the simulator spec's ``source``/``sha256`` keys."""
    if list(old) != list(new):
        raise RuntimeError(f"payload keys changed: {list(old)} -> {list(new)}")
    for key in old:
        if key == "meta":
            continue
        a, b = old[key], new[key]
        same = (_same_tensors(a, b) if isinstance(a, dict) else
                torch.equal(a, b) and a.dtype == b.dtype if torch.is_tensor(a) else a == b)  # fmt: skip
        if not same:
            raise RuntimeError(f"payload key {key!r} changed")
    meta_old, meta_new = json.loads(old["meta"]), json.loads(new["meta"])
    for meta in (meta_old, meta_new):
        meta["spec"]["simulator"].pop("source", None)
        meta["spec"]["simulator"].pop("sha256", None)
    if meta_old != meta_new:
        raise RuntimeError("metadata other than spec.simulator.sha256 changed")


def migrate(path: Path, *, dry_run: bool = False) -> str:
    """Re-stamp ``path`` in place; returns what was done (for the log line)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(payload["meta"])
    sim = meta["spec"]["simulator"]
    new = spec_digest(load_simulator_spec(sim["name"]))
    old = sim.get("sha256", f"source={sim['source']}" if "source" in sim else None)
    if "source" not in sim and sim.get("sha256") == new:
        return f"already current ({sim['name']} {new})"
    sim.pop("source", None)
    sim["sha256"] = new
    out = dict(payload)
    out["meta"] = json.dumps(meta, sort_keys=True, allow_nan=True)
    _check_only_digest_changed(payload, out)
    if not dry_run:
        tmp = path.with_name(path.name + ".tmp")
        torch.save(out, tmp)
        _check_only_digest_changed(payload, torch.load(tmp, map_location="cpu", weights_only=True))
        tmp.replace(path)
    return f"{'would set' if dry_run else 'set'} spec.simulator.sha256 of {sim['name']}: {old} -> {new}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        print(f"{path}: {migrate(path, dry_run=args.dry_run)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
