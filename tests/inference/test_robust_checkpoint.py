"""Checkpoints that are damaged, incomplete or hold non-finite numbers are refused on load."""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from gcsbi.errors import GcsbiFileError, GcsbiValueError
from gcsbi.inference import load_posterior
from gcsbi.inference.checkpoint import SHIPPED_DIR

SHIPPED = SHIPPED_DIR / "hst-phat_m31-gc.pt"


@pytest.fixture
def shipped_copy(tmp_path) -> Path:
    dst = tmp_path / "copy.pt"
    shutil.copyfile(SHIPPED, dst)
    return dst


def _flip(path: Path, offset: int, n: int = 64) -> None:
    """Invert ``n`` bytes of ``path`` starting at ``offset``."""
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _data_span(path: Path, member: zipfile.ZipInfo) -> tuple[int, int]:
    """(start, length) in the file of a stored (uncompressed) member's bytes, past its local header."""
    with path.open("rb") as fh:
        fh.seek(member.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return member.header_offset + 30 + name_len + extra_len, member.compress_size


def _largest_weight(path: Path) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if "/data/" in m.filename and m.compress_type == zipfile.ZIP_STORED]
    return max(members, key=lambda m: m.file_size)


def _member(path: Path, suffix: str) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as zf:
        return next(m for m in zf.infolist() if m.filename.endswith(suffix))


def _rewrite(src: Path, dst: Path, edit, *, restamp: bool = True) -> Path:
    """``src`` edited by ``edit``; ``restamp``: with digests that match the edit, as a crafted file would
    have (so the checks behind the digest are exercised); else the digests of the original."""
    payload = torch.load(src, map_location="cpu", weights_only=True)
    edit(payload)
    if restamp:
        from gcsbi.inference.checkpoint import weights_digest
        from gcsbi.integrity import stamp

        if torch.is_tensor(payload.get("reference_embeddings")) and isinstance(payload.get("state_dict"), dict):
            payload["weights_sha256"] = weights_digest(payload["state_dict"], payload["reference_embeddings"])
        if "sha256" in payload:
            stamp(payload)
    torch.save(payload, dst)
    return dst


def test_flipped_weight_bytes_are_detected(shipped_copy):
    start, length = _data_span(shipped_copy, _largest_weight(shipped_copy))
    assert length > 10_000
    _flip(shipped_copy, start + length // 2)
    with pytest.raises(GcsbiFileError, match="corrupt"):
        load_posterior(shipped_copy)


@pytest.mark.parametrize("where", ["file start", "data.pkl", "central directory", "end record"])
def test_flips_in_zip_structure_raise_file_error(shipped_copy, where):
    size = shipped_copy.stat().st_size
    with zipfile.ZipFile(shipped_copy) as zf:
        last = max(zf.infolist(), key=lambda m: m.header_offset)
    offsets = {
        "file start": 0,
        "data.pkl": _data_span(shipped_copy, _member(shipped_copy, "data.pkl"))[0] + 10,
        "central directory": sum(_data_span(shipped_copy, last)) + 40,
        "end record": size - 64,
    }
    _flip(shipped_copy, offsets[where])
    with pytest.raises(GcsbiFileError):
        load_posterior(shipped_copy)


def test_valid_zip_that_torch_cannot_read(shipped_copy, tmp_path):
    """Intact CRCs but an unreadable pickle: the torch.load failure becomes a GcsbiFileError."""
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(shipped_copy) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for m in src.infolist():
            data = src.read(m)
            dst.writestr(m.filename, b"\x80\x02garbage" if m.filename.endswith("data.pkl") else data)
    assert zipfile.ZipFile(bad).testzip() is None
    with pytest.raises(GcsbiFileError):
        load_posterior(bad)


@pytest.mark.parametrize("key", ["reference_embeddings", "state_dict", "meta"])
def test_missing_payload_key_is_named(shipped_copy, tmp_path, key):
    path = _rewrite(shipped_copy, tmp_path / "missing.pt", lambda p: p.pop(key))
    with pytest.raises(GcsbiFileError, match=key):
        load_posterior(path)


@pytest.mark.parametrize("key", ["history", "x_shape", "spec"])
def test_missing_meta_key_is_named(shipped_copy, tmp_path, key):
    import json

    def drop(p):
        meta = json.loads(p["meta"])
        meta.pop(key)
        p["meta"] = json.dumps(meta)

    path = _rewrite(shipped_copy, tmp_path / "meta.pt", drop)
    with pytest.raises(GcsbiFileError, match=key):
        load_posterior(path)


def test_wrong_types_refused(shipped_copy, tmp_path):
    def bad_ref(p):
        p["reference_embeddings"] = "not a tensor"

    with pytest.raises(GcsbiFileError, match="reference_embeddings"):
        load_posterior(_rewrite(shipped_copy, tmp_path / "t.pt", bad_ref))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_refused(shipped_copy, tmp_path, value):
    state = torch.load(shipped_copy, map_location="cpu", weights_only=True)["state_dict"]
    key = next(k for k, v in sorted(state.items()) if v.is_floating_point() and v.numel() > 10)

    def poison(p):
        p["state_dict"][key].view(-1)[3] = value

    with pytest.raises(GcsbiFileError, match=rf"non-finite.*{key}"):
        load_posterior(_rewrite(shipped_copy, tmp_path / "nan.pt", poison, restamp=True))


def test_non_finite_reference_embeddings_refused(shipped_copy, tmp_path):
    def poison(p):
        p["reference_embeddings"][0, 0] = float("nan")

    with pytest.raises(GcsbiFileError, match="non-finite.*reference_embeddings"):
        load_posterior(_rewrite(shipped_copy, tmp_path / "nan.pt", poison, restamp=True))


def test_weight_digest_written_and_checked(toy_posterior, tmp_path):
    """A weight edited after saving (zip CRCs rewritten, so intact) fails the stored SHA-256 digest."""
    path = toy_posterior.save(tmp_path / "p.pt")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert len(payload["weights_sha256"]) == 64
    load_posterior(path)  # the digest of an untouched file verifies

    def tamper(p):
        key = next(k for k, v in sorted(p["state_dict"].items()) if v.is_floating_point())
        p["state_dict"][key].view(-1)[0] += 1.0

    with pytest.raises(GcsbiFileError, match="SHA-256"):
        load_posterior(_rewrite(path, tmp_path / "edited.pt", tamper, restamp=False))


@pytest.mark.parametrize("name", ["hst-phat_m31-gc", "hst-mw_milky-way-gc", "hst-phat6_m31-clusters_catalogue"])
def test_shipped_checkpoints_carry_a_digest(name):
    payload = torch.load(SHIPPED_DIR / f"{name}.pt", map_location="cpu", weights_only=True)
    assert len(payload["weights_sha256"]) == 64  # every shipped posterior was (re)fitted after digests existed
    assert len(payload["sha256"]) == 64  # and stamped over its metadata too
    assert load_posterior(name).param_names


@pytest.mark.parametrize(("key", "value"), [
    ("embedding", "oops"),                                                     # not a recipe
    ("x_shape", [-1, 5, 5]),                                                   # impossible shape
    ("embedding", {"class": "gcsbi.nets.pidoc:PiDocEmbedding", "kwargs": {"in_channels": "a"}}),
    ("embedding", {"class": "gcsbi.__main__:main", "kwargs": {}}),             # would run the CLI
    ("embedding", {"class": "gcsbi.demo.run:main", "kwargs": {}}),             # gcsbi, but not a net
])
def test_damaged_or_hostile_metadata_is_a_file_error(shipped_copy, tmp_path, key, value):
    import json

    def edit(p):
        meta = json.loads(p["meta"])
        meta[key] = value
        p["meta"] = json.dumps(meta)

    path = _rewrite(shipped_copy, tmp_path / "meta.pt", edit)
    with pytest.raises((GcsbiFileError, GcsbiValueError)):
        load_posterior(path)


def test_from_sbi_refuses_a_prior_without_names(toy_posterior):
    from sbi.utils import BoxUniform

    from gcsbi.inference import TrainedPosterior

    box = BoxUniform(torch.zeros(3), torch.ones(3))
    with pytest.raises(GcsbiValueError, match="NamedBoxPrior"):
        TrainedPosterior.from_sbi(toy_posterior.posterior, prior=box, spec=toy_posterior.spec)
