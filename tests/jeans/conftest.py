"""Fixtures of the Jeans tests: a tiny galpy mock (cached per session)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_mock():
    from gcsbi.jeans.mocks import MockConfig, make_mock

    return make_mock(MockConfig(n=200, halo="core", anisotropy="iso", seed=11))
