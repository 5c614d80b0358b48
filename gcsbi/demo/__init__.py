"""The README's main job (``make demo`` = ``python -m gcsbi.demo``); see :mod:`gcsbi.demo.run`."""

from __future__ import annotations

from .run import main

__all__ = ["main"]
