"""Command-line options made from a route's config dataclass: one ``--field-name`` per field.

A config field declared with :func:`option` carries its help (and choices) in its metadata;
:func:`add_config_options` turns every field into an option, typed from its default (bool:
``--name/--no-name``; tuple: that many values), with the default shown in the help, and
:func:`config_from_options` builds the config from the options given. A field holding another config
dataclass (JFlow's ``flow``) gives options named ``--flow-<field>``. Options left out default to the
dataclass's defaults, so the dataclass is the one place a default lives.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["option", "add_config_options", "options_given", "config_from_options"]


def option(default: Any = dataclasses.MISSING, help: str = "", *, choices: Sequence[str] | None = None,
           shown: str | None = None, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose metadata holds its command-line ``help`` (and ``choices``; ``shown``: the default
    as the help states it, when the command line derives it from other options)."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if shown is not None:
        meta["shown"] = shown
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def _shown(value: Any) -> str:
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) if isinstance(value, tuple) \
        else f"{value:g}" if isinstance(value, float) else str(value)


def add_config_options(parser: argparse.ArgumentParser, cls: type, *, title: str, exclude: Sequence[str] = (),
                       aliases: Mapping[str, Sequence[str]] | None = None, prefix: str = "",
                       group: Any = None) -> None:
    """Add one option per field of the dataclass ``cls`` (but ``exclude``) to ``parser``, in a group ``title``.

    The option of field ``name`` is ``--name-with-dashes`` (``prefix`` + name for a nested config), stored under
    that dest with the default None ("not given"); ``aliases`` maps a dest to further option strings. Every
    field needs a help text (:func:`option`): a field without one raises ``TypeError``.
    """
    aliases = aliases or {}
    group = parser.add_argument_group(title) if group is None else group
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        dest, default = prefix + f.name, _default(f)
        if dataclasses.is_dataclass(default):
            add_config_options(parser, type(default), title=title, aliases=aliases, prefix=f"{dest}_", group=group)
            continue
        text = f.metadata.get("help")
        if not text:
            raise TypeError(f"{cls.__name__}.{f.name} has no help text: declare it with option(default, help)")
        kw: dict[str, Any]
        if isinstance(default, bool):
            kw = {"action": argparse.BooleanOptionalAction}
        elif isinstance(default, tuple):
            kind = float if any(isinstance(v, float) for v in default) else type(default[0])
            kw = {"type": kind, "nargs": len(default),
                  "metavar": ("LO", "HI") if len(default) == 2 else kind.__name__.upper()}
        elif isinstance(default, (int, float, str)):
            kw = {"type": type(default), "metavar": type(default).__name__.upper()}
        else:
            raise TypeError(f"no command-line form for {cls.__name__}.{f.name} = {default!r}")
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
            kw.pop("metavar", None)
        help_text = f"{text} (default: {f.metadata.get('shown', _shown(default))})".replace("%", "%%")
        group.add_argument(f"--{dest.replace('_', '-')}", *aliases.get(dest, ()), dest=dest, default=None,
                           help=help_text, **kw)


def options_given(args: argparse.Namespace, cls: type, *, exclude: Sequence[str] = (), prefix: str = ""
                  ) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line, as constructor keywords (nested configs as dicts)."""
    given: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        default = _default(f)
        if dataclasses.is_dataclass(default):
            sub = options_given(args, type(default), prefix=f"{prefix}{f.name}_")
            if sub:
                given[f.name] = sub
            continue
        value = getattr(args, prefix + f.name, None)
        if value is not None:
            given[f.name] = tuple(value) if isinstance(value, list) else value
    return given


def config_from_options(cls: type, given: Mapping[str, Any], **fixed: Any) -> Any:
    """``cls(**given, **fixed)``, nested configs (dicts in ``given``) built from their own class."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in given:
            value = given[f.name]
            if isinstance(value, Mapping):
                value = config_from_options(type(_default(f)), value)
            kw[f.name] = value
    return cls(**{**kw, **fixed})
