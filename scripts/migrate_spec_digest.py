"""Migrate checkpoints written before specs carried a content hash (one-off, idempotent).

Early checkpoints stored ``spec["simulator"]["source"]``, the absolute path of the simulator
TOML on the training machine, which made them refuse to load in any other checkout. This
replaces that key by ``sha256`` (:func:`gcsbi.simulator.spec_digest` of the named shipped
spec). Only valid if the spec's content has not changed since training: check that git shows
no commit to ``simulators/<name>.toml`` after the training bank was made (true for the two
shipped posteriors). Weights, reference embeddings and everything else are copied unchanged.

    python scripts/migrate_spec_digest.py gcsbi/data/posteriors/*.pt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from gcsbi.simulator.core import spec_digest
from gcsbi.spec.simulator_spec import load_simulator_spec


def migrate(path: Path) -> bool:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(payload["meta"])
    sim = meta["spec"]["simulator"]
    if "source" not in sim:
        return False
    sim.pop("source")
    sim["sha256"] = spec_digest(load_simulator_spec(sim["name"]))
    payload["meta"] = json.dumps(meta, sort_keys=True, allow_nan=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return True


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, "migrated" if migrate(Path(arg)) else "already current")
