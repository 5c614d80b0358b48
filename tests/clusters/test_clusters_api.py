"""gcsbi.clusters exports its public names (imported on first use)."""

from __future__ import annotations

import importlib

import pytest

import gcsbi.clusters as clusters


@pytest.mark.parametrize("name", clusters.__all__)
def test_every_exported_name_resolves_to_its_module(name):
    value = getattr(clusters, name)
    assert value is getattr(importlib.import_module(value.__module__), name)
