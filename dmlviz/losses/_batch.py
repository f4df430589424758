"""Input checks shared by every loss: one clear ValueError per bad batch or bad hyperparameter."""

import math
import numbers

import torch


def check_batch(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the problem when ``(embeddings, labels)`` is not a valid batch.

    A valid batch is a 2-D floating tensor of shape (n, d) with n >= 2, finite values, and a 1-D
    integer label tensor of length n on the same device.
    """
    if not isinstance(embeddings, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise ValueError("embeddings and labels must be torch tensors")
    if embeddings.dim() != 2:
        raise ValueError(
            f"embeddings must be 2-D (n, d), got shape {tuple(embeddings.shape)}; "
            "flatten or pool the features first"
        )
    if not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be floating point, got {embeddings.dtype}")
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (n,), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    n = embeddings.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"got {n} embeddings but {labels.shape[0]} labels; they must match")
    if n < 2:
        raise ValueError(f"a batch needs at least 2 samples, got {n}")
    if labels.device != embeddings.device:
        raise ValueError(
            f"labels are on {labels.device} but embeddings on {embeddings.device}; move them together"
        )
    if not torch.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or infinite values")


def check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ``ValueError`` naming ``name``, ``value`` and the allowed range when ``value`` is outside it.

    The range is ``[low, high]``; ``low_open`` / ``high_open`` exclude an end, ``None`` leaves it
    unbounded (the value must be finite either way). ``integer`` requires an integer type. Bools
    are refused.
    """
    kind = "an integer" if integer else "a number"
    left = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
    right = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
    ok = not isinstance(value, bool) and isinstance(
        value, numbers.Integral if integer else numbers.Real
    )
    ok = ok and math.isfinite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name} must be {kind} in {left}, {right}, got {value!r}")


def check_choice(name: str, value: object, choices: tuple) -> None:
    """Raise ``ValueError`` naming ``name`` and ``value`` when ``value`` is not one of ``choices``."""
    if isinstance(value, bool) != any(isinstance(c, bool) for c in choices) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
