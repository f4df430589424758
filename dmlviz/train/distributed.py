"""Multi-process training (torchrun / DistributedDataParallel) where the loss sees the global batch.

Each rank embeds its slice of the global batch; ``gather_batch`` concatenates every rank's
embeddings (differentiably) and labels in rank order, so every rank computes the loss of the
whole batch. The all-gather's backward sums the gradients of all ranks for each slice; DDP then
averages parameter gradients over ranks, so the update equals a single-process step on the
global batch (BatchNorm statistics stay per rank).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size`` (1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # whether train() started the process group (and must end it)

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run directory, evaluates and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing when one process trains)."""
        if self.enabled:
            dist.barrier()


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group set up by torchrun (``WORLD_SIZE`` > 1 in the environment) or by
    the caller; a single process gets ``DistInfo()``. Backend: nccl with CUDA, else gloo."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, owns_group=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, owns_group=True)


class AllGather(torch.autograd.Function):
    """Differentiable all-gather along dim 0: forward concatenates every rank's rows in rank
    order; backward sums the gradient of the whole output over ranks (each rank's loss depends on
    every slice) and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        n = grad.shape[0] // dist.get_world_size()
        rank = dist.get_rank()
        return grad[rank * n : (rank + 1) * n]


def gather_batch(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``(embeddings, labels)`` concatenated in rank order; gradients flow back to
    each rank's own embeddings. Every rank must pass the same number of rows."""
    label_list = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(label_list, labels.contiguous())
    return AllGather.apply(embeddings), torch.cat(label_list, dim=0)


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on at least one rank (a collective: every rank must call it)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


class RankSlice(Sampler[list[int]]):
    """This rank's contiguous slice of each global batch from ``batch_sampler``.

    Rank r takes rows ``[r * n, (r + 1) * n)`` with ``n = batch_size / world_size``, matching the
    rank order of ``gather_batch``.
    """

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batch_sampler = batch_sampler
        self.rank = rank
        self.world_size = world_size

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the global sampler (batches depend on seed and epoch only)."""
        self.batch_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batch_sampler:
            if len(batch) % self.world_size:
                raise ValueError(
                    f"a batch of {len(batch)} cannot be split over {self.world_size} processes; "
                    "make batch_size a multiple of the number of processes"
                )
            n = len(batch) // self.world_size
            yield list(batch[self.rank * n : (self.rank + 1) * n])

    def __len__(self) -> int:
        return len(self.batch_sampler)
