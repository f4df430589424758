"""Where to train: device choice and the CUDA mixed-precision mode."""

from __future__ import annotations

import torch


def pick_device(name: str | None = None) -> torch.device:
    """The device ``name`` ("cpu", "cuda", "cuda:1", "mps"), or with None/"auto" the best one
    present: CUDA, then Apple MPS, then CPU. Asking for a device that is absent raises ValueError.
    """
    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={name!r} is unknown; choose auto, cpu, cuda, cuda:<index> or mps"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device={name!r}: CUDA is not available here; use --device cpu or leave it out"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(f"device={name!r}: only {count} CUDA device(s) (0..{count - 1})")
    elif device.type == "mps" and not _mps_available():
        raise ValueError(f"device={name!r}: Apple MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={name!r} is not supported; choose auto, cpu, cuda or mps")
    return device


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mode`` (auto, bf16, fp16, none) on ``device``; None means fp32.

    Mixed precision is used on CUDA only; ``auto`` picks bf16 where the GPU supports it, else fp16.
    """
    if device.type != "cuda" or mode == "none":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
