"""Public names loaded on first use: ``__getattr__`` and ``__dir__`` for a package's ``__init__``."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, where: dict[str, str], public: list[str]) -> tuple[Callable, Callable]:
    """(``__getattr__``, ``__dir__``) importing ``package.where[name]`` when ``name`` is first used."""

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__
