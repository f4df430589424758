"""The batch check shared by every loss: one clear ValueError per bad batch (hyperparameters are
checked with ``dmlviz.validate``)."""

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
