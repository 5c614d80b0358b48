"""Which simulator factories a simulation bank may run, and building a simulator from one.

A bank stores its simulator as ``"module:function"`` plus JSON keyword arguments, and
``generate``/``simulator()`` import and call it. A bank is a directory anyone can edit or
send, so the stored factory is untrusted input: calling it is running code. Only the
factories in :data:`BUILTIN_FACTORIES` run by default. These are the simulator constructors
shipped with gcsbi. A prefix rule such as "any ``gcsbi.*`` callable" would not be safe:
``gcsbi.cli:main``, ``gcsbi.bank:SimulationBank.create`` or
``gcsbi.inference.cli:resolve_simulator`` would then run commands, delete directories or
import arbitrary modules named in the stored kwargs.

Any other factory runs only when the caller trusts it explicitly:

* ``trust_factory=True`` on :meth:`SimulationBank.create <gcsbi.bank.SimulationBank.create>`,
  ``open`` or ``generate`` (``--trust-factory`` on ``gcsbi bank create/generate/repair``);
* the environment variable ``GCSBI_TRUSTED_FACTORIES``: comma-separated
  ``"module:function"`` names, exact matches (``train`` on a bank also reads it).

The check runs before the module is imported, because importing runs code too. The kwargs
are plain JSON (numbers, strings, lists, objects), so they cannot carry code themselves.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
from typing import Any

from ..errors import GcsbiError, GcsbiValueError, one_line

__all__ = ["BUILTIN_FACTORIES", "TRUST_ENV", "is_trusted", "build_simulator"]

TRUST_ENV = "GCSBI_TRUSTED_FACTORIES"

#: Simulator factories of gcsbi itself; they only read spec/prior files named in their kwargs.
BUILTIN_FACTORIES = frozenset({
    "gcsbi.simulator:load_simulator",
    "gcsbi.simulator:ClusterSimulator",
    "gcsbi.catalogue.simulator:profile_simulator",
    "gcsbi.catalogue.simulator:catalogue_simulator",
    "gcsbi.catalogue.simulator:ProfileSimulator",
    "gcsbi.catalogue.simulator:CatalogueSimulator",
    "gcsbi.testing.toy:ToyImageSimulator",
})


def _env_trusted() -> set[str]:
    return {s.strip() for s in os.environ.get(TRUST_ENV, "").split(",") if s.strip()}


def is_trusted(factory: str) -> bool:
    """Whether ``factory`` runs without an explicit ``trust_factory=True``."""
    return factory in BUILTIN_FACTORIES or factory in _env_trusted()


def check_trusted(factory: str, *, trusted: bool = False) -> None:
    """Raise GcsbiValueError unless ``factory`` is built in, listed in the environment or ``trusted``."""
    if trusted or is_trusted(factory):
        return
    raise GcsbiValueError(
        f"simulator factory {factory!r} is not trusted: a bank runs only gcsbi's own simulator factories "
        f"by default, and running this one runs its code; if you trust it, pass trust_factory=True "
        f"(gcsbi bank create/generate/repair: --trust-factory) or set {TRUST_ENV}={factory}")


def _import_factory(factory: str, *, trusted: bool = False) -> Any:
    if not isinstance(factory, str) or factory.count(":") != 1:
        raise GcsbiValueError(f"simulator_factory must be 'module:function', got {factory!r}")
    module_name, attr = factory.split(":")
    private = any(part.startswith("_") for part in module_name.split("."))  # gcsbi.__main__ runs the CLI
    if (module_name == "gcsbi" or module_name.startswith("gcsbi.")) and not private:  # a typo: say so
        try:  # finds the file without running it (imports only the gcsbi packages above it)
            found = importlib.util.find_spec(module_name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise GcsbiValueError(f"cannot import simulator factory {factory!r}: no module named {module_name!r}")
    check_trusted(factory, trusted=trusted)  # before importing: an import runs code as well
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise GcsbiValueError(f"cannot import simulator factory {factory!r}: {one_line(exc)}") from exc
    if not callable(obj):
        raise GcsbiValueError(f"simulator factory {factory!r} is not callable")
    return obj


def build_simulator(factory: str, kwargs: dict[str, Any], *, trusted: bool = False) -> Any:
    """Build a simulator from ``"module:function"`` and JSON kwargs; checks trust and the contract.

    ``trusted=True`` runs a factory that is neither built in nor listed in
    ``GCSBI_TRUSTED_FACTORIES``. Keyword arguments the factory does not accept, and any
    other failure of the factory, raise GcsbiValueError naming the factory.
    """
    fn = _import_factory(factory, trusted=trusted)
    if not isinstance(kwargs, dict):
        raise GcsbiValueError(f"factory_kwargs of {factory} must be a JSON object, got {kwargs!r}")
    if "workers" in kwargs:  # a bank parallelises over chunks; a stored value must not fork N pools
        raise GcsbiValueError(f"factory_kwargs of {factory} may not set 'workers': use generate(workers=...) "
                              "(gcsbi bank generate --workers N)")
    shown = one_line(json.dumps(kwargs, sort_keys=True, default=repr), 200)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none: the call below reports the mismatch
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise GcsbiValueError(f"simulator factory {factory} does not accept factory_kwargs {shown}: "
                                  f"{one_line(exc)}") from exc
    try:
        sim = fn(**kwargs)
    except GcsbiError:
        raise
    except Exception as exc:
        raise GcsbiValueError(f"simulator factory {factory} failed with factory_kwargs {shown}: "
                              f"{type(exc).__name__}: {one_line(exc)}") from exc
    missing = [a for a in ("prior", "param_names", "output_shape", "spec") if not hasattr(sim, a)]
    if missing or not callable(sim):
        raise GcsbiValueError(f"{factory} did not return a simulator (missing {missing or '__call__'})")
    return sim
