"""Stamp model files written before gcsbi's SHA-256 covered metadata (posteriors, map models).

Usage: ``python scripts/restamp_models.py FILE [FILE ...]`` (default: every shipped model file).

Run it only on files you trust: stamping certifies the file's current content. A posterior's
older ``weights_sha256`` (weights only) and every zip CRC must still verify before it is stamped;
the weights are copied byte for byte and only ``format_version`` and ``sha256`` change.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from gcsbi.inference.checkpoint import SHIPPED_DIR, weights_digest
from gcsbi.inference.serialize import FORMAT as POSTERIOR_FORMAT, FORMAT_VERSION as POSTERIOR_VERSION
from gcsbi.integrity import payload_digest, read_model_file, stamp
from gcsbi.maps.infer import SHIPPED_MAPS_DIR
from gcsbi.maps.model import FORMAT as MAPS_FORMAT


def restamp(path: Path) -> str:
    fmt = torch.load(path, map_location="cpu", weights_only=True).get("format")
    if fmt not in (POSTERIOR_FORMAT, MAPS_FORMAT):
        raise SystemExit(f"{path}: not a gcsbi model file")
    what = "posterior checkpoint" if fmt == POSTERIOR_FORMAT else "map model"
    payload = read_model_file(path, fmt=fmt, what=what, trust_unverified=True)  # size caps, zip CRCs
    if "sha256" in payload and payload["sha256"] == payload_digest(payload):
        return f"{path}: already stamped"
    if fmt == POSTERIOR_FORMAT:
        old = payload.get("weights_sha256")
        if old is not None and old != weights_digest(payload["state_dict"], payload["reference_embeddings"]):
            raise SystemExit(f"{path}: weights do not match their stored weights_sha256; not stamping")
        payload["format_version"] = POSTERIOR_VERSION
    tmp = path.with_name(path.name + ".tmp")
    torch.save(stamp(payload), tmp)
    tmp.replace(path)
    return f"{path}: stamped {payload['sha256'][:16]}"


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted([*SHIPPED_DIR.glob("*.pt"), *SHIPPED_MAPS_DIR.glob("*.pt")])
    for p in paths:
        print(restamp(p))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
