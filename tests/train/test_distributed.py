"""DistributedDataParallel on CPU (gloo, 2 processes): the loss sees the global batch, and loss,
gradients and trained weights equal a single process on the same batch."""

import copy
import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel

from dmlviz.losses import build
from dmlviz.models import build_model
from dmlviz.train import train
from dmlviz.train.distributed import gather_batch

WORLD = 2
CONFIG = {
    "dataset": "digits",
    "loss": "contextual",
    "epochs": 1,
    "batches_per_epoch": 3,
    "eval_every": 0,
    "num_threads": 1,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_step_matches_single_process(rank: int, loss_name: str) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", embedding_dim=16, in_channels=1, image_size=8)
    reference = copy.deepcopy(model)
    images = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(4).repeat_interleave(3)
    loss_fn = build(loss_name)

    ddp = DistributedDataParallel(model)
    mine = slice(rank * 6, rank * 6 + 6)
    embeddings, all_labels = gather_batch(ddp(images[mine]), labels[mine])
    assert torch.equal(all_labels, labels)
    loss = loss_fn(embeddings, all_labels)
    loss.backward()

    expected = loss_fn(reference(images), labels)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=f"{loss_name} {name}")


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for loss_name in ("contextual", "rll"):
            _one_step_matches_single_process(rank, loss_name)
        train(CONFIG, out, progress=False)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "ddp")), nprocs=WORLD, join=True)
    single = train(CONFIG, tmp_path / "single", progress=False)
    ddp = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    for key, value in load_file(str(single.path / "model.safetensors")).items():
        torch.testing.assert_close(ddp[key], value, atol=1e-5, rtol=1e-4, msg=key)
    ddp_loss = [json.loads(line)["loss"] for line in (tmp_path / "ddp" / "metrics.jsonl").open()]
    assert ddp_loss == pytest.approx(single.metrics()["loss"].tolist(), rel=1e-5)
