"""Model files (posteriors, map models) cannot run code, are verified whole, and cannot declare huge shapes."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from gcsbi.errors import GcsbiFileError
from gcsbi.inference import load_posterior
from gcsbi.inference.checkpoint import SHIPPED_DIR
from gcsbi.integrity import TRUST_ENV, read_model_file, stamp
from gcsbi.maps.infer import SHIPPED_MAPS_DIR
from gcsbi.maps.model import FORMAT as MAPS_FORMAT, load_map_model

POSTERIOR = SHIPPED_DIR / "hst-phat_m31-gc.pt"
MAPS = SHIPPED_MAPS_DIR / "hst-phat_m31-gc.pt"


def _edited(src: Path, dst: Path, edit, *, restamp: bool = True) -> Path:
    """A copy of ``src`` changed by ``edit(payload, meta)``; ``restamp``: with a matching digest, as a
    crafted file would carry."""
    payload = torch.load(src, map_location="cpu", weights_only=True)
    meta = json.loads(payload["meta"])
    edit(payload, meta)
    payload["meta"] = json.dumps(meta)
    if restamp:
        stamp(payload)
    torch.save(payload, dst)
    return dst


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """An importable module that leaves a file behind when imported or called."""
    mark = tmp_path / "ran"
    (tmp_path / "gcsbi_canary.py").write_text(
        f"from pathlib import Path\nPath({str(mark)!r}).write_text('imported')\n"
        f"def boom(**kw):\n    Path({str(mark)!r}).write_text('called')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield mark
    sys.modules.pop("gcsbi_canary", None)


def test_calibrate_never_imports_a_simulator_named_in_a_checkpoint(tmp_path, canary, capsys):
    from gcsbi.cli import main

    def edit(payload, meta):
        meta["spec"]["simulator"]["name"] = "gcsbi_canary:boom"

    path = _edited(POSTERIOR, tmp_path / "hostile.pt", edit)
    rc = main(["calibrate", str(path), "--n-held-out", "5", "--num-posterior-samples", "5", "--no-c2st"])
    err = capsys.readouterr().err
    assert rc == 1 and not canary.exists()
    assert "not one of gcsbi's specs" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["gcsbi_canary:boom", "os:system", "gcsbi.__main__:main", "torch.nn:Sequential"])
def test_an_embedding_class_outside_the_registry_is_refused(tmp_path, canary, target):
    def edit(payload, meta):
        meta["embedding"] = {"class": target, "kwargs": {}}

    with pytest.raises(GcsbiFileError, match="not one of gcsbi's embedding classes"):
        load_posterior(_edited(POSTERIOR, tmp_path / "emb.pt", edit))
    assert not canary.exists()


def test_an_identity_embedding_is_a_one_line_file_error(tmp_path):
    def edit(payload, meta):
        meta["embedding"] = {"class": "torch.nn:Identity", "kwargs": {}}

    with pytest.raises(GcsbiFileError, match="no parameters"):
        load_posterior(_edited(POSTERIOR, tmp_path / "ident.pt", edit))


def test_edited_metadata_fails_the_digest(tmp_path):
    """The digest covers the metadata: editing it without re-stamping is detected."""
    def edit(payload, meta):
        meta["spec"]["simulator"]["name"] = "os:abort"

    with pytest.raises(GcsbiFileError, match="SHA-256"):
        load_posterior(_edited(POSTERIOR, tmp_path / "meta.pt", edit, restamp=False))


def test_a_file_without_digest_needs_explicit_trust(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path = _edited(POSTERIOR, tmp_path / "nodigest.pt", lambda p, m: p.pop("sha256"), restamp=False)
    with pytest.raises(GcsbiFileError, match=TRUST_ENV):
        load_posterior(path)
    assert load_posterior(path, trust_unverified=True).param_names
    monkeypatch.setenv(TRUST_ENV, "1")
    assert load_posterior(path).param_names


@pytest.mark.parametrize(("where", "value", "match"), [
    ("x_shape", [3, 30000, 30000], "at most"),
    ("hidden_features", 50000, "far larger"),
    ("branch_features", 50000, "more than"),
])
def test_declared_sizes_are_checked_before_allocating(tmp_path, where, value, match):
    def edit(payload, meta):
        if where == "x_shape":
            meta["x_shape"] = value
        elif where == "hidden_features":
            meta["config"]["hidden_features"] = value
        else:
            meta["embedding"]["kwargs"][where] = value

    with pytest.raises(GcsbiFileError, match=match):
        load_posterior(_edited(POSTERIOR, tmp_path / "bomb.pt", edit))


def test_declared_archive_sizes_are_capped(tmp_path):
    with pytest.raises(GcsbiFileError, match="more than"):
        read_model_file(POSTERIOR, fmt="gcsbi-posterior", what="posterior checkpoint", max_bytes=1000)


def test_a_flipped_bit_in_a_map_model_is_refused(tmp_path):
    """One flipped bit in decoder.out.bias (zip CRC rewritten by re-saving) changes the digest."""
    def edit(payload, meta):
        bias = payload["state_dict"]["decoder.out.bias"]
        bias.view(torch.int32)[0] ^= 1 << 20

    with pytest.raises(GcsbiFileError, match="SHA-256"):
        load_map_model(_edited(MAPS, tmp_path / "flip.pt", edit, restamp=False))


def test_a_flipped_byte_on_disk_in_a_map_model_is_refused(tmp_path):
    path = tmp_path / "disk.pt"
    shutil.copyfile(MAPS, path)
    with zipfile.ZipFile(path) as zf:
        member = max((m for m in zf.infolist() if "/data/" in m.filename), key=lambda m: m.file_size)
    data = bytearray(path.read_bytes())
    data[member.header_offset + 200] ^= 0x10  # inside the largest weight tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(GcsbiFileError, match="corrupt"):
        load_map_model(path)


@pytest.mark.parametrize("damage", ["no decoder", "extra key", "non-tensor state", "foreign encoder", "huge flow"])
def test_damaged_map_models_are_one_line_file_errors(tmp_path, damage):
    def edit(payload, meta):
        if damage == "no decoder":
            meta.pop("decoder")
        elif damage == "extra key":
            payload["state_dict"]["decoder.extra"] = torch.zeros(3)
        elif damage == "non-tensor state":
            payload["state_dict"]["decoder.out.bias"] = [1.0, 2.0]
        elif damage == "foreign encoder":
            meta["encoder"] = {"class": "os:system", "kwargs": {"command": "true"}}
        else:
            meta["flow"] = {"transforms": 4, "hidden": [60000, 60000]}

    with pytest.raises(GcsbiFileError) as info:
        load_map_model(_edited(MAPS, tmp_path / "bad.pt", edit))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("path", sorted([*SHIPPED_DIR.glob("*.pt"), *SHIPPED_MAPS_DIR.glob("*.pt")]),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_model_file_verifies(path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    fmt = MAPS_FORMAT if path.parent == SHIPPED_MAPS_DIR else "gcsbi-posterior"
    payload = read_model_file(path, fmt=fmt, what="model file")
    assert len(payload["sha256"]) == 64
