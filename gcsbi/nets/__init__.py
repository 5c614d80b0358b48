"""Embedding networks and their input standardisation (plain ``torch.nn.Module`` s, sbi-compatible).

``pidoc`` (:class:`PiDocEmbedding`, the π-DOC-style CNN), ``small`` (:class:`SmallCNN`, for tests),
``mlp`` (:class:`CatalogueMLP`, catalogue feature vectors), ``standardize``
(:class:`ChannelStandardize`: one mean/std per image channel) and ``recipe`` (how a checkpoint
rebuilds a net).
"""

from __future__ import annotations

from .mlp import CatalogueMLP
from .pidoc import PiDocConfig, PiDocEmbedding
from .recipe import build_embedding, embedding_recipe
from .small import SmallCNN
from .standardize import ChannelStandardize

__all__ = ["PiDocConfig", "PiDocEmbedding", "SmallCNN", "CatalogueMLP", "ChannelStandardize",
           "embedding_recipe", "build_embedding"]
