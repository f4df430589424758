"""Argument checks for every public class, config key, sweep spec field and CLI option.

scikit-learn style: a bad value raises ``InvalidValue`` (a ``ValueError``) whose message names the
argument, the value and what is allowed, the same way everywhere::

    k=1 is invalid: must be an integer >= 2

``problem`` gives that message as text, for checks that list every problem at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


class InvalidValue(ValueError):
    """A bad argument: ``name``, ``value`` and ``allowed`` say which, what and what instead."""

    def __init__(self, name: str, value: object, allowed: str):
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(problem(name, value, allowed))


def problem(name: str, value: object, allowed: str) -> str:
    """The message for ``name=value`` being bad: ``"<name>=<value!r> is invalid: <allowed>"``."""
    return f"{name}={value!r} is invalid: {allowed}"


def number_range(
    low: float | None,
    high: float | None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> str:
    """What ``check_number`` allows, in words: ``"a number in [0, 1)"``, ``"an integer >= 2"``."""
    if integer and high is None:
        return "an integer" if low is None else f"an integer {'>' if low_open else '>='} {low}"
    left = "(-inf" if low is None else f"{'(' if low_open else '['}{low}"
    right = "inf)" if high is None else f"{high}{')' if high_open else ']'}"
    return f"{'an integer' if integer else 'a number'} in {left}, {right}"


def is_number(
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> bool:
    """Whether ``value`` is a finite number (an integer if ``integer``; never a bool) in the range
    ``[low, high]`` (``low_open`` / ``high_open`` exclude an end, ``None`` leaves it unbounded)."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        return False
    if low is not None and not (value > low if low_open else value >= low):
        return False
    return high is None or (value < high if high_open else value <= high)


def check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    error: type[InvalidValue] = InvalidValue,
) -> None:
    """Raise ``error(name, value, allowed)`` unless ``value`` passes ``is_number`` with these
    bounds."""
    bounds = dict(low_open=low_open, high_open=high_open, integer=integer)
    if not is_number(value, low, high, **bounds):
        raise error(name, value, f"must be {number_range(low, high, **bounds)}")


def check_choice(
    name: str, value: object, choices: Iterable, *, error: type[InvalidValue] = InvalidValue
) -> None:
    """Raise ``error(name, value, allowed)`` unless ``value`` is one of ``choices`` (a bool only
    matches a bool, so ``1`` is not ``True``)."""
    choices = tuple(choices)
    bools = any(isinstance(choice, bool) for choice in choices)
    if isinstance(value, bool) != bools or value not in choices:
        raise error(name, value, f"choose one of {', '.join(map(str, choices))}")


def check_flag(name: str, value: object, *, error: type[InvalidValue] = InvalidValue) -> None:
    """Raise ``error(name, value, allowed)`` unless ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise error(name, value, "must be true or false")
