"""What every registry module shares: lazy factories and help lines that list names."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def load_factory(path: str) -> Callable:
    """The object ``"module:attribute"`` names, imported now (so a registry stays free of torch
    until an entry is built)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def names_help(names: list[str]) -> str:
    """``["a", "b", "c"]`` as ``"a, b or c"``, for help lines."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
