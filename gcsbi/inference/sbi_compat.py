"""Every place where gcsbi relies on sbi internals, written for sbi ``SBI_VERSION`` (pinned).

The rest of gcsbi uses sbi's public API only (``NPE``, ``posterior_nn``, ``DirectPosterior``,
``sbi.diagnostics``). Here, and nowhere else, gcsbi reads or writes private attributes or relies
on the layout of sbi objects:

* :class:`MemoryTracker`: the tracker protocol NPE logs to (in memory, no TensorBoard folder);
* :func:`with_embedding`: swaps the embedding net of a density estimator (``_embedding_net``,
  ``_condition_shape``);
* :func:`train_in_stages`: resumes NPE training at a new learning rate (``_epochs_since_last_improvement``,
  ``_val_loss``, ``_best_val_loss``, ``optimizer``, ``epoch``);
* :func:`training_summary`, :func:`split_indices`, :func:`npe_history`: NPE's training record and
  train/validation split;
* :func:`density_estimator_of`, :func:`split_standardization`: what a posterior or estimator built by
  sbi holds (``posterior_estimator``; z-scoring as ``Sequential(Standardize, embedding_net)``);
* :func:`quiet`: silences the warnings sbi and its dependencies raise in the calls gcsbi makes
  on purpose, matched by their exact wording;
* :func:`epoch_progress`: turns the epoch counter sbi prints to stdout during training
  (``show_progress_bars=True``, "Epochs trained: N") into a tqdm bar on stderr.

On an sbi upgrade, re-check each function against the new sbi source, then update
``SBI_VERSION`` (``tests/inference/test_sbi_compat.py`` fails until then).
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import GcsbiValueError

__all__ = ["SBI_VERSION", "quiet", "epoch_progress", "MemoryTracker", "with_embedding", "train_in_stages",
           "training_summary", "split_indices", "npe_history", "density_estimator_of", "split_standardization"]

#: The sbi version this module was checked against.
SBI_VERSION = "0.27.0"

#: Warnings a gcsbi user can do nothing about, by the call that raises them (message prefixes):
#: ``sampling``: nflows' LU transforms call the deprecated ``torch.triangular_solve`` when sampling;
#: ``probe``: the rejection-free probe draws of ``TrainedPosterior.sample_batched`` are meant to fall
#: partly outside the prior (their in-prior fraction is what is measured and reported);
#: ``diagnostics``: SBC/TARP on few mocks, which ``calibrate`` reports against its noise level instead;
#: ``own_zscore``: sbi checks x for constant dimensions before z-scoring it, also when gcsbi
#: standardises x itself per channel (``z_score_x="channel"``: sbi's z-scoring is off, and an
#: always-empty pixel of a CMD channel is harmless).
QUIET: dict[str, tuple[str, ...]] = {
    "own_zscore": ("Data has constant values in dimension",),
    "sampling": ("torch.triangular_solve is deprecated",),
    "probe": ("torch.triangular_solve is deprecated", r"[0-9.]+% of samples drawn with reject_outside_prior=False"),
    "diagnostics": ("Number of SBC samples should be", "Number of TARP samples should be",
                    "You are computing SBC checks with less than"),
}


@contextlib.contextmanager
def quiet(*calls: str) -> Iterator[None]:
    """Ignore the :data:`QUIET` warnings of ``calls`` inside the block (every other warning shows)."""
    with warnings.catch_warnings():
        for call in calls:
            for message in QUIET[call]:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


class _EpochSink(io.TextIOBase):
    """A stdout stand-in that reads sbi's "Epochs trained: N" prints and advances a bar to N."""

    _EPOCHS = re.compile(r"Epochs trained:\s*(\d+)")

    def __init__(self, bar: Any) -> None:
        super().__init__()
        self.bar = bar

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for found in self._EPOCHS.findall(text):
            epochs = int(found)
            if epochs > self.bar.n:
                self.bar.update(epochs - self.bar.n)
        return len(text)


@contextlib.contextmanager
def epoch_progress(desc: str = "training") -> Iterator[None]:
    """Inside the block, sbi's training prints (``show_progress_bars=True``) drive a bar on stderr.

    sbi prints its epoch counter to stdout (``"\\r Training neural network. Epochs trained: N"``)
    and a convergence note at the end; stdout is redirected for the block and that text becomes
    a tqdm bar counting epochs (the number is not known in advance: training stops early).
    """
    from tqdm.auto import tqdm

    with tqdm(desc=desc, unit="epoch") as bar, contextlib.redirect_stdout(_EpochSink(bar)):
        yield


class MemoryTracker:
    """sbi ``Tracker`` protocol, kept in memory (no TensorBoard ``sbi-logs`` folder)."""

    log_dir = None

    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = {}

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        self.metrics.setdefault(name, []).append(float(value))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


def with_embedding(estimator: nn.Module, embedding_net: nn.Module, *, condition_shape: Sequence[int]) -> nn.Module:
    """A copy of sbi density ``estimator`` with a copy of ``embedding_net`` in place of its own.

    Used to train a flow alone on features (identity embedding), then to put the fixed embedding
    back. nflows flows keep the embedding in ``net._embedding_net``, zuko flows in
    ``_embedding_net``; the condition shape is ``_condition_shape``.
    """
    inner = getattr(estimator, "net", None)
    owner = inner if hasattr(inner, "_embedding_net") else estimator
    if not hasattr(owner, "_embedding_net") or not hasattr(estimator, "_condition_shape"):
        raise GcsbiValueError(f"train_embedding=False is not supported for {type(estimator).__name__}")
    old, owner._embedding_net = owner._embedding_net, None  # not deep-copied
    try:
        out = copy.deepcopy(estimator)
    finally:
        owner._embedding_net = old
    target = out.net if owner is inner else out
    target._embedding_net = copy.deepcopy(embedding_net).eval()
    out._condition_shape = torch.Size(condition_shape)
    return out


def train_in_stages(npe: Any, *, learning_rate: float, refine_learning_rates: Sequence[float],
                    max_num_epochs: int, **train_kwargs: Any) -> nn.Module:
    """``npe.train`` at ``learning_rate``, then resumed at each ``refine_learning_rates`` entry.

    Resuming keeps sbi's train/validation split, optimizer state and best validation loss; the
    patience counter and the optimizer's rate are reset here. Each stage runs at most
    ``max_num_epochs`` epochs.
    """
    estimator = npe.train(learning_rate=learning_rate, max_num_epochs=max_num_epochs, **train_kwargs)
    for lr in refine_learning_rates:
        for group in npe.optimizer.param_groups:
            group["lr"] = lr
        npe._epochs_since_last_improvement = 0
        npe._val_loss = npe._best_val_loss  # the weights are the best ones again
        estimator = npe.train(learning_rate=lr, max_num_epochs=npe.epoch + max_num_epochs,
                              resume_training=True, **train_kwargs)
    return estimator


def training_summary(npe: Any) -> dict[str, list[float]]:
    """NPE's record of training: ``epochs_trained`` and ``best_validation_loss`` (one entry per
    ``train`` call), ``training_loss`` and ``validation_loss`` (one per epoch)."""
    return {k: [float(v) for v in vals] for k, vals in npe.summary.items()}


def split_indices(npe: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) row indices of NPE's last train/validation split."""
    return npe.val_indices, npe.train_indices


def npe_history(npe: Any) -> dict[str, Any]:
    """The training history of a trained NPE object, as gcsbi records it (JSON-able)."""
    summary = training_summary(npe)
    epochs, best = summary.get("epochs_trained", []), summary.get("best_validation_loss", [])
    history: dict[str, Any] = {
        "epochs_trained": int(epochs[-1]) if epochs else 0,
        "stage_end_epochs": [int(e) for e in epochs],  # one per train() call (learning-rate stage)
        "best_validation_loss": float(best[-1]) if best else float("nan"),
        "training_loss": summary.get("training_loss", []),
        "validation_loss": summary.get("validation_loss", []),
    }
    if hasattr(npe, "val_indices") and hasattr(npe, "train_indices"):
        val, train = split_indices(npe)
        history["n_simulations"] = int(len(val) + len(train))
        history["n_validation"] = int(len(val))
    return history


def density_estimator_of(obj: Any) -> nn.Module:
    """The density estimator of an sbi ``DirectPosterior`` (``posterior_estimator``), or ``obj`` itself."""
    estimator = getattr(obj, "posterior_estimator", obj)
    if not isinstance(estimator, nn.Module) or not hasattr(estimator, "condition_shape") \
            or getattr(estimator, "embedding_net", None) is None:
        raise GcsbiValueError(f"expected an sbi DirectPosterior (NPE.build_posterior()) or its conditional density "
                              f"estimator, got {type(obj).__name__}")
    return estimator


def split_standardization(embedding_net: nn.Module) -> tuple[str, nn.Module]:
    """(z_score_x, the user's embedding net) of an estimator's ``embedding_net``.

    sbi z-scores x by prepending a ``Standardize`` layer (``nn.Sequential(Standardize, net)``):
    per-dimension means ("independent") or one scalar mean ("structured"); gcsbi prepends a
    :class:`~gcsbi.nets.standardize.ChannelStandardize` ("channel"). Anything else: "none".
    """
    from sbi.utils.sbiutils import Standardize

    from ..nets.standardize import ChannelStandardize

    if isinstance(embedding_net, nn.Sequential) and len(embedding_net) == 2:
        first, net = embedding_net[0], embedding_net[1]
        if isinstance(first, ChannelStandardize):
            return "channel", net
        if isinstance(first, Standardize):
            return ("structured" if first._mean.ndim == 0 else "independent"), net
    return "none", embedding_net
