"""Training speed: images/s of a training step, the loss's share of it, and whole digits runs.

* Step throughput (model forward + loss + backward + AdamW step on in-memory batches) for the
  mlp on digits (8 px) and the convnet on Omniglot (28 px), per loss, with the share of the step
  spent in the loss (its forward + backward on the same embeddings).
* Threads: a step with 1 torch thread against all cores (why digits defaults to 1); every other
  number is measured with 1 thread, which stays steady on a shared machine.
* Whole runs: wall seconds of ``dmlviz.train.train`` with the default digits config, per loss, and
  of training + embedding + evaluation (what the demo pays per run).
* Omniglot end to end: images/s of the training loop reading the PNGs (data loading included).
* CUDA only: resnet50 at 224 px with bf16 autocast against fp32 (skipped with a note on CPU).

Writes ``benchmarks/results/train_speed.json``. ``--quick`` is a smoke run of a few seconds.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import torch
from _common import machine_info, parse_args, time_fn, write_result

from dmlviz.data import MPerClassBatchSampler, load_dataset
from dmlviz.losses import build
from dmlviz.models import build_model
from dmlviz.train import amp_dtype, default_config, finish_run, train, train_step

LOSSES = ("contextual", "rll", "contrastive", "multisimilarity", "triplet")
SHARED = Path(os.environ.get("DMLVIZ_SHARED", Path(__file__).resolve().parents[2] / "shared"))
OMNIGLOT = SHARED / "data" / "omniglot" / "images_background_small1.zip"


def step_closure(model, loss_fn, images, labels, dtype=None):
    """One training step (``dmlviz.train.train_step``) on a fixed batch, as a closure."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler(images.device.type, enabled=dtype == torch.float16)
    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        return train_step(
            model, loss_fn, images, labels, optimizer, scheduler, scaler, dtype, None, params, False
        )

    return step


def loss_closure(model, loss_fn, images, labels):
    """The loss's forward + backward alone, on the model's embeddings of the same batch."""
    with torch.no_grad():
        embeddings = model(images).float()
    leaf = embeddings.clone().requires_grad_(True)

    def step():
        leaf.grad = None
        loss_fn(leaf, labels).backward()

    return step


def a_batch(dataset, batch_size: int, m: int):
    """The first m-per-class batch of ``dataset`` as (images, labels) tensors."""
    sampler = MPerClassBatchSampler(dataset.labels, m=m, batch_size=batch_size, seed=0)
    sampler.set_epoch(1)
    indices = next(iter(sampler))
    images = torch.stack([dataset[i][0] for i in indices])
    return images, torch.as_tensor(dataset.labels[indices])


def bench_steps(name, dataset, model_kwargs, batch_size, m, losses, warmup, reps) -> list[dict]:
    images, labels = a_batch(dataset, batch_size, m)
    rows = []
    for loss in losses:
        torch.manual_seed(0)
        model = build_model(**model_kwargs).train()
        loss_fn = build(loss)
        step = time_fn(step_closure(model, loss_fn, images, labels), warmup, reps)
        alone = time_fn(loss_closure(model, loss_fn, images, labels), warmup, reps)
        rows.append(
            {
                "setting": name,
                "loss": loss,
                "batch": batch_size,
                "step_ms": 1e3 * step["median_s"],
                "images_per_s": batch_size / step["median_s"],
                "loss_ms": 1e3 * alone["median_s"],
                "loss_share": alone["median_s"] / step["median_s"],
            }
        )
        print(
            f"{name:16s} {loss:16s} {rows[-1]['images_per_s']:9.0f} img/s  "
            f"loss {100 * rows[-1]['loss_share']:5.1f}% of the step",
            flush=True,
        )
    return rows


def bench_threads(name, dataset, model_kwargs, batch_size, m, warmup, reps) -> dict:
    """A contextual-loss step with 1 torch thread and with every core (ratio > 1: 1 is faster)."""
    images, labels = a_batch(dataset, batch_size, m)
    times = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = build_model(**model_kwargs).train()
        times[threads] = time_fn(
            step_closure(model, build("contextual"), images, labels), warmup, reps
        )["median_s"]
    torch.set_num_threads(1)
    one, many = times[1], times[max(times)]
    print(f"{name:22s} 1 thread {1e3 * one:7.1f} ms  {max(times)} threads {1e3 * many:7.1f} ms")
    return {
        "setting": f"{name}, batch {batch_size}",
        "threads_1_ms": 1e3 * one,
        "threads_all": max(times),
        "threads_all_ms": 1e3 * many,
        "ratio_1_thread_vs_all": many / one,
    }


def bench_runs(losses, quick: bool) -> list[dict]:
    """Wall seconds of one default digits run per loss: training, then + embed + evaluate."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="dmlviz-bench-") as tmp:
        for loss in losses:
            config = default_config("digits", loss)
            config["noise_rate"] = 0.2
            if quick:
                config["epochs"] = 2
            started = time.perf_counter()
            run = train(config, Path(tmp) / loss, progress=False)
            trained = time.perf_counter() - started
            metrics = finish_run(run) or {}
            total = time.perf_counter() - started
            rows.append(
                {
                    "loss": loss,
                    "epochs": config["epochs"],
                    "train_s": trained,
                    "train_embed_evaluate_s": total,
                    "test_map@r": metrics.get("map@r"),
                }
            )
            print(f"digits run {loss:16s} train {trained:5.2f} s  + embed/evaluate {total:5.2f} s")
    return rows


def bench_omniglot_loop(quick: bool) -> list[dict]:
    """Images/s of train() on Omniglot 28 px with the convnet, reading the PNGs as it goes."""
    batches = 3 if quick else 30
    with tempfile.TemporaryDirectory(prefix="dmlviz-bench-") as tmp:
        config = {
            "dataset": "omniglot",
            "dataset_root": str(OMNIGLOT),
            "loss": "contextual",
            "epochs": 1,
            "batches_per_epoch": batches,
            "eval_every": 0,
            "num_threads": 1,
        }
        run = train(config, Path(tmp) / "omniglot", progress=False)
        record = run.metrics().iloc[-1]
    print(f"omniglot loop     {record['images_per_s']:9.0f} img/s (PNG decoding included)")
    return [
        {
            "setting": "convnet/omniglot 28px, train() with data loading",
            "batches": batches,
            "images_per_s": float(record["images_per_s"]),
            "threads": 1,
        }
    ]


def bench_amp(quick: bool) -> list[dict]:
    """resnet50 at 224 px on CUDA: bf16 (or fp16) autocast against fp32, synthetic images."""
    device = torch.device("cuda")
    batch = 16 if quick else 128
    images = torch.randn(batch, 3, 224, 224, device=device).contiguous(
        memory_format=torch.channels_last
    )
    labels = (torch.arange(batch, device=device) // 4).long()
    rows = {}
    for mode in ("none", "auto"):
        torch.manual_seed(0)
        model = build_model("resnet50", embedding_dim=512).to(device)
        model = model.to(memory_format=torch.channels_last).train()
        dtype = amp_dtype(mode, device)
        timing = time_fn(
            step_closure(model, build("contextual").to(device), images, labels, dtype),
            warmup=2 if quick else 5,
            reps=3 if quick else 20,
        )
        rows[mode] = batch / timing["median_s"]
    return [
        {
            "setting": f"resnet50 224px batch {batch} on {torch.cuda.get_device_name(0)}",
            "fp32_images_per_s": rows["none"],
            "amp_images_per_s": rows["auto"],
            "amp_dtype": str(amp_dtype("auto", device)),
            "speedup": rows["auto"] / rows["none"],
        }
    ]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    warnings.filterwarnings("ignore")
    quick = args.quick
    warmup, reps = (1, 3) if quick else (5, 30)
    losses = ("contextual", "rll") if quick else LOSSES
    torch.set_num_threads(1)  # steady numbers on a shared machine; `threads` compares more
    digits = load_dataset("digits", split="train", protocol="samples")
    mlp = {"name": "mlp", "embedding_dim": 64, "in_channels": 1, "image_size": 8}
    steps = bench_steps("mlp/digits 8px", digits, mlp, 60, 12, losses, warmup, reps)
    threads = [bench_threads("mlp/digits 8px", digits, mlp, 60, 12, warmup, reps)]
    notes = []
    omniglot_loop = []
    if OMNIGLOT.exists():
        omniglot = load_dataset("omniglot", root=OMNIGLOT, split="train")
        convnet = {"name": "convnet", "embedding_dim": 64, "in_channels": 1, "image_size": 28}
        batch = 16 if quick else 64
        steps += bench_steps(
            "convnet/omniglot 28px", omniglot, convnet, batch, 4, losses[:1] if quick else losses,
            warmup, reps,
        )  # fmt: skip
        threads.append(
            bench_threads("convnet/omniglot 28px", omniglot, convnet, batch, 4, warmup, reps)
        )
        omniglot_loop = bench_omniglot_loop(quick)
    else:
        notes.append(f"Omniglot rows skipped: {OMNIGLOT} is absent.")
    runs = bench_runs(("contextual",) if quick else LOSSES, quick)
    amp = []
    if torch.cuda.is_available():
        amp = bench_amp(quick)
    else:
        notes.append("GPU rows skipped: no CUDA device here (resnet50 224 px AMP vs fp32).")
    payload = {
        "description": (
            "Training speed on the machine below. `steps`: images/s of one training step (forward, "
            "loss, backward, AdamW) on an in-memory m-per-class batch, median of the timed steps, "
            "and `loss_share`, the loss's forward + backward time over the step's. `threads`: the "
            "step with 1 torch thread against all cores (ratio > 1: one thread is faster). "
            "`digits_runs`: wall seconds of one default digits run (noise 0.2) per loss, and with "
            "its embedding and evaluation. `omniglot_loop`: train() throughput with PNG decoding. "
            "`amp`: resnet50 224 px, autocast against fp32, CUDA only."
        ),
        "machine": machine_info(),
        "settings": {"warmup": warmup, "reps": reps, "quick": quick},
        "steps": steps,
        "threads": threads,
        "digits_runs": runs,
        "omniglot_loop": omniglot_loop,
        "amp": amp,
        "notes": " ".join(notes),
        "charts": {"steps": {"x": "loss", "y": ["images_per_s"], "color": "setting"}},
    }
    print(f"wrote {write_result('train_speed', payload)}")


if __name__ == "__main__":
    main()
