"""Embedding networks for image observations (plain ``torch.nn.Module`` s, sbi-compatible)."""

from __future__ import annotations

from .pidoc import PiDocConfig, PiDocEmbedding

__all__ = ["PiDocConfig", "PiDocEmbedding"]
