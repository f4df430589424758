"""Does a good start change which loss is most robust to label noise? (issue 15's question)

On Omniglot, a convnet is pretrained on clean labels of one half of the train characters (the
contrastive loss, neither of the two compared), then fine-tuned with ``--init-from`` on the other
half at 0 % and 40 % symmetric noise with the contextual loss and RLL (their tuned presets), next
to the same runs from scratch on that half. Test MAP@R is on the test characters (never trained
on); the detector AUROC is neighbour consistency's, on the fine-tuning half's noisy labels.

The halves are the two validation folds of ``val_fraction=0.5``: fold 0 trains on half A,
fold 1 on half B. Finished runs are reused, so the script resumes where it stopped::

    .venv/bin/python scripts/pretrained_start.py --out runs/pretrained-start --seeds 0,1

Writes ``<out>/results.csv`` (one row per run) and ``<out>/summary.md`` (mean and spread over seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's dmlviz

from dmlviz.runs import CONFIG, Run  # noqa: E402
from dmlviz.train import finish_run, train  # noqa: E402

OMNIGLOT = "/work/shared/data/omniglot/images_background_small1.zip"
LOSSES = ("contextual", "rll")
NOISE = (0.0, 0.4)


def _run(config: dict, out: Path) -> Run:
    """Train and evaluate ``config`` into ``out``, or reuse it when it finished before."""
    if (out / CONFIG).exists():
        run = Run.load(out)
        if run.status().get("state") == "finished" and run.eval_metrics("test"):
            return run
        raise SystemExit(f"{out} holds an unfinished run; delete it or resume it by hand")
    started = time.perf_counter()
    run = train(config, out, progress=False)
    finish_run(run, device="cpu")
    print(f"{out.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pretrained-start"))
    parser.add_argument("--root", default=OMNIGLOT, help="Omniglot folder or zip")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=None, help="default: the tuned preset's")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    common = {"dataset": "omniglot", "dataset_root": args.root, "val_fraction": 0.5,
              "num_threads": args.threads, "tensorboard": False}  # fmt: skip
    if args.epochs:
        common["epochs"] = args.epochs
    pretrained = _run(
        {**common, "loss": "contrastive", "val_fold": 0, "seed": 0}, args.out / "pretrain-halfA"
    )
    rows = []
    for loss in LOSSES:
        for noise in NOISE:
            for seed in seeds:
                for start in ("scratch", "pretrained"):
                    config = {**common, "loss": loss, "val_fold": 1, "noise_rate": noise,
                              "seed": seed, "noise_seed": seed}  # fmt: skip
                    if start == "pretrained":
                        config["init_from"] = str(pretrained.path)
                    name = f"{loss}-{start}-noise{round(noise * 100)}-seed{seed}"
                    summary = _run(config, args.out / name).summary()
                    rows.append(
                        {
                            "loss": loss,
                            "start": start,
                            "noise": noise,
                            "seed": seed,
                            "map@r": summary["map@r"],
                            "recall@1": summary["recall@1"],
                            "detector_auroc": summary["detector_auroc"],
                        }  # fmt: skip
                    )
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "results.csv", index=False)
    pre = pretrained.summary()
    text = [
        f"Pretrained start: {pre['name']} (contrastive, clean half A), test MAP@R "
        f"{pre['map@r']:.4f}. Fine-tuning on half B, seeds {args.seeds}, "
        f"{frame.shape[0]} runs; mean ± standard deviation over seeds.",
        "",
        "| loss | start | noise | test MAP@R | detector AUROC | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for (loss, start, noise), group in frame.groupby(["loss", "start", "noise"]):
        cells = [
            f"{group[key].mean():.4f} ± {group[key].std(ddof=1) if len(group) > 1 else 0:.4f}"
            if group[key].notna().any()
            else "-"
            for key in ("map@r", "detector_auroc")
        ]
        text.append(f"| {loss} | {start} | {noise:g} | {' | '.join(cells)} | {len(group)} |")
    (args.out / "summary.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
