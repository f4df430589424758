"""`make gpu-check`: everything dmlviz claims about GPUs, checked in one command (under 8 minutes).

On a machine without CUDA it prints "no CUDA device" and exits 0. With CUDA it runs, each part
under its own time limit and each failure recorded rather than fatal:

1. the CUDA-marked tests (``pytest -k cuda``: the losses on CUDA without host tensors);
2. both losses on CUDA against the CPU: float32, and under bf16 and fp16 autocast, values and
   gradients (the losses compute in float32 whatever autocast says);
3. the training-step time of a ResNet-50 at 224 px (synthetic images, batch 128, AMP bf16,
   channels_last, with and without ``torch.compile``), and the share of a step spent in each loss
   (forward + backward) at batch 128, 256 and 512 (target: under 5 %);
4. the losses' speed on CUDA: forward + backward of the contextual loss and our Ranked List Loss
   against pytorch-metric-learning's ``RankedListLoss`` at batch 1,024 and 4,096 (d = 512),
   interleaved rounds as in ``benchmarks/loss_speed.py`` (reported, not failed);
5. one short ``torchrun`` job with one process per GPU: every rank's loss of the gathered global
   batch equals the single-process loss of the same batch, gradients too; then a real
   ``dmlviz train`` on digits under torchrun.

Results go to ``benchmarks/results/gpu.json`` and the "gpu" section of ``docs/performance.md``;
the exit code is 1 when a correctness check failed (a loss share over 5 % is reported, not failed). ``--dry-run-cpu`` runs the same code on the CPU with tiny
sizes and writes to a temporary folder (a check of this script, not of a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from _common import machine_info, time_fns, write_result  # noqa: E402

BUDGET_S = 7 * 60  # leave a minute of the 8 for start-up and the report
LOSS_TOLERANCE = {"float32": 1e-4, "bf16": 1e-4, "fp16": 1e-4}  # relative, on fp32 inputs
SHARE_TARGET = 0.05
EMBEDDING_DIM = 512


class Sizes:
    """The sizes of a real check (``dry_run`` False) or of a dry run on the CPU."""

    def __init__(self, dry_run: bool):
        self.image = 64 if dry_run else 224
        self.step_batch = 8 if dry_run else 128
        self.share_batches = (8, 16) if dry_run else (128, 256, 512)
        self.speed_batches = (16,) if dry_run else (1024, 4096)
        self.speed_dim = 16 if dry_run else EMBEDDING_DIM
        self.reps = 2 if dry_run else 10
        self.warmup = 1 if dry_run else 3
        self.compile = not dry_run
        self.world = 2 if dry_run else torch.cuda.device_count()


def _batch(n: int, dim: int, device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` unit embeddings of ``n / 4`` classes, 4 each (the papers' batches)."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1)
    labels = torch.arange(n // 4).repeat_interleave(4)
    return embeddings.to(device), labels.to(device)


def _losses() -> dict:
    from dmlviz.losses import ContextualLoss, RankedListLoss
    from dmlviz.losses.contextual import PRESETS

    return {"contextual": ContextualLoss(**PRESETS["224px"]), "rll": RankedListLoss()}


def _short(text: str, lines: int = 4) -> str:
    """The last ``lines`` lines of ``text`` on one line (a table cell in docs/performance.md)."""
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp(min=1e-12))


# -- 1. the CUDA-marked tests ------------------------------------------------------------------


def cuda_tests(device: str, timeout: float) -> list[dict]:
    """Run ``pytest -k cuda`` (tests skipped without CUDA); one row with the outcome."""
    env = dict(os.environ)
    if device == "cuda" and not env.get("CUDA_VISIBLE_DEVICES"):
        # tests/conftest.py hides GPUs unless CUDA_VISIBLE_DEVICES is set
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(torch.cuda.device_count()))
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-k", "cuda", "tests/losses", "tests/train"]
    started = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    return [
        {
            "check": "pytest -k cuda",
            "exit_code": done.returncode,
            "summary": summary,
            "seconds": time.perf_counter() - started,
            "ok": done.returncode == 0 and " passed" in summary,
        }
    ]


# -- 2. the losses on the device against the CPU -----------------------------------------------


def losses_against_cpu(device: str) -> list[dict]:
    """Value and gradient of each loss on ``device`` (fp32, bf16 and fp16 autocast) against the
    CPU in float32, for a batch of 128 x 512."""
    rows = []
    for name, loss in _losses().items():
        embeddings, labels = _batch(128, EMBEDDING_DIM, "cpu", seed=1)
        reference_in = embeddings.clone().requires_grad_(True)
        reference = loss(reference_in, labels)
        reference.backward()
        for mode, dtype in (("float32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            x = embeddings.to(device, copy=True).requires_grad_(True)
            with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
                value = loss.to(device)(x, labels.to(device))
            value.backward()
            value_error = _relative(value.detach().cpu(), reference.detach())
            grad_error = _relative(x.grad.cpu(), reference_in.grad)
            rows.append(
                {
                    "loss": name,
                    "mode": mode,
                    "value_dtype": str(value.dtype).replace("torch.", ""),
                    "value": float(value.detach()),
                    "cpu_value": float(reference.detach()),
                    "value_rel_error": value_error,
                    "grad_rel_error": grad_error,
                    "ok": value.dtype == torch.float32
                    and value_error < LOSS_TOLERANCE[mode]
                    and grad_error < LOSS_TOLERANCE[mode],
                }
            )
    return rows


# -- 3. ResNet-50 training steps and each loss's share ------------------------------------------


def _step_setup(device: str, batch: int, sizes: Sizes, compiled: bool):
    from dmlviz.models import build_model
    from dmlviz.train.loop import train_step

    torch.manual_seed(0)
    model = build_model("resnet50", embedding_dim=EMBEDDING_DIM, pooling="gem").to(device)
    model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    dtype = torch.bfloat16 if device == "cuda" else None
    scaler = torch.amp.GradScaler(device, enabled=False)
    images = torch.randn(batch, 3, sizes.image, sizes.image, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch // 4, device=device).repeat_interleave(4)
    params = list(model.parameters())

    def step(loss_fn):
        return train_step(
            net, loss_fn, images, labels, optimizer, scheduler, scaler, dtype, None, params, False
        )

    return step


def step_times(device: str, sizes: Sizes, deadline: float) -> list[dict]:
    """Median time of one ResNet-50 training step (contextual loss) at ``sizes.step_batch``, with
    and without ``torch.compile``; the first compiled steps (compilation) are timed apart."""
    rows = []
    loss = _losses()["contextual"].to(device)
    for compiled in (False, True) if sizes.compile else (False,):
        if time.perf_counter() > deadline:
            rows.append({"compile": compiled, "skipped": "time budget spent"})
            continue
        step = _step_setup(device, sizes.step_batch, sizes, compiled)
        started = time.perf_counter()
        step(loss)
        _sync(device)
        first = time.perf_counter() - started
        timing = time_fns({"step": partial(step, loss)}, sizes.warmup, sizes.reps)["step"]
        rows.append(
            {
                "model": f"resnet50 {sizes.image}px",
                "batch": sizes.step_batch,
                "amp": "bf16" if device == "cuda" else "none",
                "channels_last": True,
                "compile": compiled,
                "first_step_s": first,
                "step_ms": 1000 * timing["median_s"],
                "iqr_ms": 1000 * timing["iqr_s"],
                "images_per_s": sizes.step_batch / timing["median_s"],
            }
        )
        _free(device)
    return rows


def loss_shares(device: str, sizes: Sizes, deadline: float) -> list[dict]:
    """Each loss's forward + backward time on the step's (batch, 512) embeddings against the whole
    ResNet-50 step (eager), at each batch of ``sizes.share_batches``; also the contextual loss on
    2048-d projections (the 224 px recipe's projector)."""
    rows = []
    for batch in sizes.share_batches:
        if time.perf_counter() > deadline:
            rows.append({"batch": batch, "skipped": "time budget spent"})
            continue
        try:
            timing = _share_timing(device, batch, sizes)
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": batch, "skipped": "out of GPU memory"})
            _free(device)
            continue
        step_s = timing["step"]["median_s"]
        for key, value in timing.items():
            if key == "step":
                continue
            share = value["median_s"] / step_s
            rows.append(
                {
                    "batch": batch,
                    "loss": key,
                    "loss_ms": 1000 * value["median_s"],
                    "step_ms": 1000 * step_s,
                    "share": share,
                    "under_5_percent": share < SHARE_TARGET,  # a target, not a failure
                }
            )
        _free(device)
    return rows


def _share_timing(device: str, batch: int, sizes: Sizes) -> dict:
    """``time_fns`` of one eager ResNet-50 step and of each loss's forward + backward alone."""
    losses = {name: loss.to(device) for name, loss in _losses().items()}
    step = _step_setup(device, batch, sizes, compiled=False)
    fns = {"step": lambda: step(losses["contextual"])}
    for name, dim in (("contextual", EMBEDDING_DIM), ("contextual", 2048), ("rll", EMBEDDING_DIM)):
        x, labels = _batch(batch, dim, device, seed=2)
        x.requires_grad_(True)

        def loss_pass(x=x, labels=labels, loss=losses[name]):
            x.grad = None
            loss(x, labels).backward()

        fns[f"{name}_{dim}"] = loss_pass
    return time_fns(fns, sizes.warmup, sizes.reps)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _free(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()


# -- 4. the losses' speed against pytorch-metric-learning's RankedListLoss -----------------------


def loss_speed(device: str, sizes: Sizes, deadline: float) -> list[dict]:
    """Forward + backward of the contextual loss and our RLL against PML's RankedListLoss on
    ``device`` (``loss_speed.measure``: every loss interleaved, 3 rounds), one row per batch."""
    from loss_speed import measure

    rows = []
    for n in sizes.speed_batches:
        if time.perf_counter() > deadline:
            rows.append({"n": n, "skipped": "time budget spent"})
            continue
        rll, contextual = measure(n, sizes.speed_dim, torch.device(device), sizes.warmup, 5, 3)
        rows.append(
            {
                "n": n,
                "d": sizes.speed_dim,
                "contextual_ms": contextual["ours_ms"],
                "rll_ms": rll["ours_ms"],
                "pml_rll_ms": rll["pml_ms"],
                "contextual_time_vs_pml_rll": contextual["time_vs_pml_rll"],
                "rll_speedup_vs_pml": rll["speedup_vs_pml"],
                "contextual_speedup_vs_transcription": contextual["speedup"],
                "contextual_loss_abs_diff": contextual["loss_abs_diff"],
            }
        )
        _free(device)
    return rows


# -- 5. torchrun: the global-batch loss ---------------------------------------------------------


def torchrun_check(device: str, sizes: Sizes, timeout: float, folder: Path) -> list[dict]:
    """Start this script under torchrun with ``sizes.world`` processes (``--worker``); each rank
    writes its findings as JSON; then a short ``dmlviz train`` on digits under torchrun."""
    rows = []
    runner = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    runner += [f"--nproc_per_node={sizes.world}"]
    cmd = [*runner, str(Path(__file__).resolve()), "--worker", str(folder)]
    if device == "cpu":
        cmd.append("--dry-run-cpu")
    started = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    found = sorted(folder.glob("rank*.json"))
    for path in found:
        rows += json.loads(path.read_text())
    if done.returncode != 0 or len(found) != sizes.world:
        rows.append(
            {
                "check": "torchrun workers",
                "exit_code": done.returncode,
                "ranks_reported": len(found),
                "error": _short(done.stderr),
                "ok": False,
            }
        )
    batch = 4 * 10  # digits: 10 classes x 4
    if batch % sizes.world:
        rows.append({"check": "dmlviz train under torchrun", "skipped": f"40 % {sizes.world}"})
        return rows
    out = folder / "train-run"
    train = [*runner, "-m", "dmlviz", "train", "--dataset", "digits", "--loss", "contextual"]
    train += ["--epochs", "2", "--batches-per-epoch", "5", "--batch-size", str(batch)]
    train += ["--m-per-class", "4", "--device", device, "--no-progress", "--out", str(out)]
    left = max(timeout - (time.perf_counter() - started), 30)
    done = subprocess.run(
        train, cwd=REPO, capture_output=True, text=True, timeout=left, check=False
    )
    status = json.loads((out / "status.json").read_text()) if (out / "status.json").exists() else {}
    records = (
        [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        if (out / "metrics.jsonl").exists()
        else []
    )
    rows.append(
        {
            "check": "dmlviz train under torchrun",
            "world_size": sizes.world,
            "exit_code": done.returncode,
            "state": status.get("state"),
            "final_loss": records[-1]["loss"] if records else None,
            "map@r": records[-1].get("map@r") if records else None,
            "error": _short(done.stderr) if done.returncode else "",
            "ok": done.returncode == 0 and status.get("state") == "finished",
        }
    )
    return rows


def worker(folder: Path, dry_run: bool) -> int:
    """One torchrun rank: gather this rank's slice of a global batch, compute each loss of the
    gathered batch, and compare value and gradient with the whole batch in this process."""
    import torch.distributed as dist

    from dmlviz.train.distributed import gather_batch

    use_cuda = not dry_run
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    rows = []
    try:
        per_rank = 64
        embeddings, labels = _batch(per_rank * world, EMBEDDING_DIM, device, seed=3)
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        for name, loss in _losses().items():
            loss = loss.to(device)
            local = embeddings[mine].clone().requires_grad_(True)
            gathered, all_labels = gather_batch(local, labels[mine].contiguous())
            value = loss(gathered, all_labels)
            value.backward()
            whole = embeddings.clone().requires_grad_(True)
            reference = loss(whole, labels)
            reference.backward()
            values = [torch.zeros(1, device=device) for _ in range(world)]
            dist.all_gather(values, value.detach().reshape(1))
            spread = float(torch.cat(values).max() - torch.cat(values).min())
            # the all-gather's backward sums every rank's gradient of its slice; DDP then
            # averages over ranks, so world x the whole-batch gradient is what each rank holds
            grad_error = _relative(local.grad / world, whole.grad[mine])
            value_error = _relative(value.detach(), reference.detach())
            rows.append(
                {
                    "check": "global-batch loss",
                    "rank": rank,
                    "world_size": world,
                    "loss": name,
                    "global_batch": per_rank * world,
                    "value": float(value.detach()),
                    "value_rel_error": value_error,
                    "spread_over_ranks": spread,
                    "grad_rel_error": grad_error,
                    "labels_gathered": bool(torch.equal(all_labels, labels)),
                    "ok": value_error < 1e-5
                    and grad_error < 1e-4
                    and spread < 1e-6
                    and bool(torch.equal(all_labels, labels)),
                }
            )
    except Exception:  # report it in the JSON; the parent marks the check failed
        rows.append(
            {
                "check": "global-batch loss",
                "rank": rank,
                "error": _short(traceback.format_exc()),
                "ok": False,
            }
        )
    (folder / f"rank{rank}.json").write_text(json.dumps(rows))
    dist.destroy_process_group()
    return 0


# -- the whole check ----------------------------------------------------------------------------


def _part(name: str, results: dict, fn) -> None:
    print(f"== {name}", flush=True)
    started = time.perf_counter()
    try:
        results[name] = fn()
    except Exception:
        traceback.print_exc()
        results[name] = [{"check": name, "error": _short(traceback.format_exc()), "ok": False}]
    bad = [row for row in results[name] if row.get("ok") is False]
    seconds = time.perf_counter() - started
    print(f"   {'FAILED' if bad else 'ok'} in {seconds:.1f} s", flush=True)
    for row in bad:
        print(f"   {json.dumps(row)[:1500]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run-cpu", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--worker", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.dry_run_cpu)
    if not args.dry_run_cpu and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (run `make gpu-check` on a machine with a GPU)")
        return 0
    device = "cpu" if args.dry_run_cpu else "cuda"
    sizes = Sizes(args.dry_run_cpu)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # matmuls stay full fp32 (no TF32), as by default
    start = time.perf_counter()
    deadline = start + BUDGET_S
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="dmlviz-gpu-check-") as tmp:
        _part("cuda_tests", results, lambda: cuda_tests(device, timeout=120))
        _part("losses_vs_cpu", results, lambda: losses_against_cpu(device))
        _part("resnet50_step", results, lambda: step_times(device, sizes, deadline - 150))
        _part("loss_share", results, lambda: loss_shares(device, sizes, deadline - 120))
        _part("loss_speed", results, lambda: loss_speed(device, sizes, deadline - 90))
        left = max(deadline - time.perf_counter(), 60)
        _part("torchrun", results, lambda: torchrun_check(device, sizes, left, Path(tmp)))
    failed = [name for name, rows in results.items() if any(r.get("ok") is False for r in rows)]
    payload = {
        "description": (
            "`make gpu-check` (benchmarks/gpu_check.py): the CUDA tests, both losses on CUDA "
            "against the CPU, ResNet-50 training steps at 224 px (bf16, channels_last, with and "
            "without torch.compile), each loss's share of a step (target under 5 %), both losses' "
            "speed against pytorch-metric-learning's RankedListLoss, and the global-batch loss "
            "under torchrun."
        ),
        "machine": {
            **machine_info(),
            "gpus": torch.cuda.device_count() if device == "cuda" else 0,
        },
        "seconds": time.perf_counter() - start,
        "failed": failed,
        **results,
    }
    if args.dry_run_cpu:
        with tempfile.TemporaryDirectory(prefix="dmlviz-gpu-dry-") as tmp:
            os.environ["DMLVIZ_BENCH_RESULTS"] = tmp
            print(f"dry run: {write_result('gpu', payload)} (discarded)")
    else:
        print(f"results: {write_result('gpu', payload)}")
        from run_all import RESULTS, write_report

        print(f"report: {write_report(RESULTS)}")
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} "
          f"in {payload['seconds']:.0f} s")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
