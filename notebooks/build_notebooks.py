"""Write the teaching notebooks from the cell texts in this file.

The ``.ipynb`` files are generated, never edited by hand: change the text here and run

    .venv/bin/python notebooks/build_notebooks.py          # rewrite the notebooks
    .venv/bin/python notebooks/build_notebooks.py --check  # exit 1 if a stored one differs

They are stored without outputs and with fixed cell ids, so a diff shows only what changed.
``tests/notebooks/test_notebooks_clean.py`` checks both; ``pytest --nbmake notebooks`` runs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str]  # ("markdown" | "code", source)


def md(text: str) -> Cell:
    """A markdown cell; ``text`` is dedented and stripped."""
    return ("markdown", dedent(text).strip())


def code(text: str) -> Cell:
    """A code cell; ``text`` is dedented and stripped."""
    return ("code", dedent(text).strip())


def notebook(cells: list[Cell]) -> nbformat.NotebookNode:
    """A version-4 notebook of ``cells`` for the ``python3`` kernel, without outputs, with cell
    ids ``cell-00``, ``cell-01``, ... so that rebuilding it gives the same file."""
    nb = new_notebook(
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
    )
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
        cell["id"] = f"cell-{index:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


# --------------------------------------------------------------------------------------------------
# 01: the two losses on a batch you can see
# --------------------------------------------------------------------------------------------------


def losses_explained() -> list[Cell]:
    """Cells of ``01_losses_explained.ipynb``."""
    return [
        md(
            """
            # 1 · Two metric-learning losses you can see

            A metric-learning model maps each image to an *embedding*, a unit-length vector, so
            that images of the same class end up close together and images of different classes
            far apart. Retrieval then means: embed the query, return its nearest neighbours.

            The model learns this from a **loss** computed on a batch of embeddings and their
            labels. This notebook opens up the two losses of dmlviz:

            * the **Ranked List Loss** (RLL; Wang et al., CVPR 2019 / TPAMI 2021), which looks at
              distances, and
            * the **contextual loss** (Liao, Tsiligkaridis & Kulis, ICML 2023), which looks at
              *who your neighbours are*.

            The embeddings here have only 2 dimensions. Both losses first scale every embedding
            to length 1, so the whole batch lies on the unit circle and you can see every pair.
            Nothing is re-implemented: we build the library's losses with
            `dmlviz.losses.build(name)` and call their `explain(embeddings, labels)` method,
            which returns every intermediate quantity of the loss as numpy arrays.
            """
        ),
        code(
            """
            import os

            os.environ.setdefault("OMP_NUM_THREADS", "1")

            import numpy as np
            import pandas as pd
            import plotly.graph_objects as go
            import torch
            import torch.nn.functional as F
            from plotly.subplots import make_subplots

            from dmlviz.losses import build

            torch.manual_seed(0)
            torch.set_num_threads(1)
            """
        ),
        md(
            """
            ## A toy batch

            Training batches in metric learning hold several images of each class (here 3 classes
            × 4 images), so that every sample has *positives* (same class) and *negatives* (other
            classes) in the batch. We place 12 points on the circle by hand. Classes 0 and 2 form
            compact groups, class 1 is spread out, and **point 7 has label 1 but sits in the
            middle of class 0**: a hard sample, or perhaps a mislabelled image.
            """
        ),
        code(
            """
            angles = torch.tensor([0.0, 0.3, 0.6, 0.9, 2.0, 2.3, 2.6, 0.45, 4.1, 4.4, 4.7, 5.0])
            labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
            embeddings = torch.stack([angles.cos(), angles.sin()], dim=1)
            COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c"]


            def circle(centre=(0.0, 0.0), radius=1.0, **line):
                \"\"\"A circle as a line trace (the unit circle, or a distance boundary).\"\"\"
                t = np.linspace(0, 2 * np.pi, 200)
                return go.Scatter(
                    x=centre[0] + radius * np.cos(t), y=centre[1] + radius * np.sin(t),
                    mode="lines", line={"color": "lightgrey", "width": 1, **line},
                    hoverinfo="skip", showlegend=False,
                )


            def points(xy, labels, size=14, showlegend=False):
                \"\"\"The batch as numbered markers coloured by class.\"\"\"
                xy, labels = np.asarray(xy), np.asarray(labels)
                return go.Scatter(
                    x=xy[:, 0], y=xy[:, 1], mode="markers+text",
                    text=[str(i) for i in range(len(xy))], textfont=dict(color="white", size=9),
                    marker=dict(size=size, color=[COLOURS[c] for c in labels]),
                    hovertext=[f"point {i}, class {c}" for i, c in enumerate(labels)],
                    hoverinfo="text", showlegend=showlegend,
                )


            def square(fig, limit=1.35):
                \"\"\"Equal, fixed axis ranges in every panel so that circles look like circles.\"\"\"
                fig.update_xaxes(range=[-limit, limit], visible=False)
                fig.update_yaxes(range=[-limit, limit], visible=False)
                fig.for_each_yaxis(lambda axis: axis.update(scaleanchor=axis.anchor or "x"))
                return fig.update_layout(plot_bgcolor="white")


            fig = go.Figure([circle(), points(embeddings, labels, size=20)])
            square(fig).update_layout(
                width=420, height=420, title="The batch: 3 classes × 4 points on the unit circle"
            )
            fig.show()
            """
        ),
        md(
            """
            ## Ranked List Loss: active sets and weights

            RLL takes every sample in turn as the **query**; the rest of the batch is its ranked
            list. With unit vectors the distance $d_{ij} = \\lVert e_i - e_j \\rVert$ lies in
            $[0, 2]$. Two boundaries set the goal:

            * negatives should be farther than $\\alpha$ (the negative boundary),
            * positives should be closer than $\\alpha - m$ (the positive boundary, $m$ the margin).

            Only pairs that break their rule take part. These are the **active** (non-trivial)
            sets of query $i$:

            * $P^*_i$ = positives with $d_{ij} > \\alpha - m$ (too far away),
            * $N^*_i$ = negatives with $d_{ij} < \\alpha$ (too close).

            Pairs that already satisfy their rule cost nothing, so a class is only squeezed into a
            ball of diameter $\\alpha - m$, not onto a single point.

            Inside each active set the pairs are **weighted**. A negative gets
            $w^-_{ij} = \\exp(T_n(\\alpha - d_{ij}))$, normalised to sum to 1 over $N^*_i$: with
            $T_n = 10$ the closest (hardest) negatives dominate. Positives use $T_p = 0$ here, so
            every active positive counts the same. The per-query losses are weighted averages of
            the violations,

            $$L_P(i) = \\sum_{j \\in P^*_i} w^+_{ij}\\,(d_{ij} - (\\alpha - m)), \\qquad
              L_N(i) = \\sum_{j \\in N^*_i} w^-_{ij}\\,(\\alpha - d_{ij}),$$

            and the batch loss is the mean over queries of $\\tfrac12 (L_P(i) + L_N(i))$. An empty
            set contributes 0. The weights are treated as constants, and (as in the official
            code) each pair moves only its query.

            The defaults are $m = 0.4$ and $\\alpha = 1 + m/2 = 1.2$ (the TPAMI "RLL-Simpler"
            setting), so positives should be within 0.8 and negatives beyond 1.2.
            """
        ),
        code(
            """
            rll = build("rll")
            print(rll)
            r = rll.explain(embeddings, labels)
            print("explain() keys:", sorted(r))

            # the documented default: alpha = None means 1 + margin / 2
            alpha = 1 + rll.margin / 2 if rll.alpha is None else rll.alpha
            positive_boundary = alpha - rll.margin
            print(f"alpha = {alpha:.2f}, positive boundary alpha - m = {positive_boundary:.2f}")
            """
        ),
        md(
            """
            Below, each panel is one query (the large ring). The dashed circles around it are the
            two boundaries: positives outside the **green** circle (radius $\\alpha - m$) are
            active, negatives inside the **red** circle (radius $\\alpha$) are active. Lines join
            the query to its active pairs; the line width is the pair's normalised weight.
            """
        ),
        code(
            """
            queries = [0, 4, 7]
            xy = embeddings.numpy()
            fig = make_subplots(
                rows=1, cols=len(queries), subplot_titles=[f"query {q}" for q in queries]
            )
            for col, q in enumerate(queries, start=1):
                fig.add_trace(circle(), row=1, col=col)
                fig.add_trace(circle(xy[q], positive_boundary, dash="dash", color="green"), row=1, col=col)
                fig.add_trace(circle(xy[q], alpha, dash="dash", color="red"), row=1, col=col)
                for mask, weights, colour in [
                    (r["positive_mask"], r["positive_weights"], "green"),
                    (r["negative_mask"], r["negative_weights"], "red"),
                ]:
                    for j in np.flatnonzero(mask[q]):
                        fig.add_trace(
                            go.Scatter(
                                x=[xy[q, 0], xy[j, 0]], y=[xy[q, 1], xy[j, 1]], mode="lines",
                                line=dict(color=colour, width=1 + 8 * weights[q, j]),
                                hovertext=f"{q}→{j}: d = {r['distances'][q, j]:.2f}, "
                                f"weight = {weights[q, j]:.2f}",
                                hoverinfo="text", showlegend=False,
                            ),
                            row=1, col=col,
                        )
                fig.add_trace(points(xy, labels), row=1, col=col)
                fig.add_trace(
                    go.Scatter(
                        x=[xy[q, 0]], y=[xy[q, 1]], mode="markers", hoverinfo="skip",
                        marker=dict(size=26, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
                        showlegend=False,
                    ),
                    row=1, col=col,
                )
            square(fig, limit=2.3).update_layout(
                width=1000, height=380, title="RLL: active positives (green) and negatives (red)"
            )
            fig.show()
            """
        ),
        md(
            """
            The table lists, for every query, how many pairs are active and its two losses. Read it
            with the picture: a query whose positives are all within the green circle has
            $L_P = 0$; one with no negative inside the red circle has $L_N = 0$. Point 7 is the
            outlier: its class-mates are far away and the class-0 points around it are close, so
            both of its terms are large.
            """
        ),
        code(
            """
            table = pd.DataFrame(
                {
                    "class": labels.numpy(),
                    "active positives |P*|": r["positive_mask"].sum(1),
                    "active negatives |N*|": r["negative_mask"].sum(1),
                    "L_P": r["L_P"].round(3),
                    "L_N": r["L_N"].round(3),
                }
            ).rename_axis("query")
            print(f"batch loss = {float(r['loss']):.4f}")
            table
            """
        ),
        md(
            """
            How sharp is the negative weighting? For query 7, the weights of its active negatives
            against their distance: with $T_n = 10$ a negative that is 0.1 closer gets
            $e^{1} \\approx 2.7$ times the weight.
            """
        ),
        code(
            """
            q = 7
            active = np.flatnonzero(r["negative_mask"][q])
            pd.DataFrame(
                {
                    "negative": active,
                    "distance": r["distances"][q, active].round(3),
                    "weight": r["negative_weights"][q, active].round(3),
                }
            ).sort_values("distance")
            """
        ),
        md(
            """
            ## Contextual loss: neighbourhoods and contextual similarity

            The contextual loss does not ask "how far apart are $i$ and $j$?" but "do $i$ and
            $j$ have the same neighbours?". Step by step, as in the paper's code:

            1. **Similarities.** $S = f f^\\top$ (cosine similarity) and the squared distance
               $D = 2 - 2S$.
            2. **Neighbourhoods.** $N(i)$ holds the $k$ nearest points of $i$, itself included,
               plus any point within a small slack $\\varepsilon$ of the $k$-th distance. Here
               $k = 4$, the number of images per class, so in a perfect embedding $N(i)$ is
               exactly $i$'s class.
            3. **Overlap.** $A_{ij} = |N(i) \\cap N(j)| / |N(i)|$ (shared neighbours) and
               $B_{ij} = |\\bar N(i) \\cap \\bar N(j)| / |\\bar N(i)|$ (shared non-neighbours);
               $\\tilde W_{ij} = \\tfrac12 (A_{ij} + B_{ij})$ for $j \\in N(i)$ and 0 otherwise.
            4. **Query expansion.** Each row of $\\tilde W$ is averaged over the *mutual*
               $k/2$-neighbours $R(i)$ of $i$ (with $k = 4$: $i$ and its mutual nearest
               neighbour, if it has one).
            5. **Symmetrise.** $W = \\tfrac12(\\hat W + \\hat W^\\top)$, the **contextual
               similarity**, between 0 and 1.

            The contextual term asks $W$ to equal the label matrix $Y$ ($Y_{ij} = 1$ for the same
            class, 0 otherwise):
            $L_{ctx} = \\frac{1}{n^2} \\sum_{i \\ne j} (W_{ij} - Y_{ij})^2$.

            Membership of a neighbourhood is a step function, whose true gradient is zero almost
            everywhere. The paper's **heuristic gradient** pretends, on the way back, that every
            step had slope 10 (a straight-through estimator), so the loss can still move the
            points. The full loss adds a contrastive hinge on $S$ (positives pulled above cosine
            0.75, negatives pushed below 0.6) and a small regulariser that pulls the batch-mean
            cosine toward $\\rho$: $0.4\\,L_{ctx} + 0.5\\,L_{con} + 0.1\\,L_{reg}$ with the
            defaults (the paper's 256 px recipe).
            """
        ),
        code(
            """
            contextual = build("contextual")
            print(contextual)
            c = contextual.explain(embeddings, labels)
            print("explain() keys:", sorted(c))
            print(
                f"L_ctx = {float(c['L_ctx']):.4f}, L_con = {float(c['L_con']):.4f}, "
                f"L_reg = {float(c['L_reg']):.4f}, loss = {float(c['loss']):.4f}"
            )
            """
        ),
        md(
            """
            The matrices side by side (row $i$, column $j$): the labels $Y$ the loss aims for, the
            neighbourhood mask $N$, the contextual similarity $W$, and the per-pair error
            $(W - Y)^2$. Look at row and column 7: its neighbourhood is made of class-0 points, so
            $W$ links it to class 0 and not to its own class, and the error lights up there.
            """
        ),
        code(
            """
            panels = {"Y (labels)": c["Y"], "N (neighbourhoods)": c["N"],
                      "W (contextual similarity)": c["W"], "(W - Y)²": (c["W"] - c["Y"]) ** 2}
            fig = make_subplots(rows=1, cols=4, subplot_titles=list(panels), horizontal_spacing=0.04)
            for col, matrix in enumerate(panels.values(), start=1):
                fig.add_trace(
                    go.Heatmap(z=matrix, zmin=0, zmax=1, colorscale="Viridis", showscale=col == 4),
                    row=1, col=col,
                )
                fig.update_yaxes(autorange="reversed", dtick=1, row=1, col=col)
                fig.update_xaxes(dtick=1, row=1, col=col)
            fig.update_layout(width=1100, height=330)
            fig.show()
            """
        ),
        md(
            """
            The same on the circle for two queries. The ring marks the query; points of its
            neighbourhood $N(i)$ have a black outline; a point's size is its contextual
            similarity $W_{ij}$ to the query.
            """
        ),
        code(
            """
            queries = [0, 7]
            fig = make_subplots(
                rows=1, cols=len(queries), subplot_titles=[f"neighbourhood of {q}" for q in queries]
            )
            for col, q in enumerate(queries, start=1):
                inside = c["N"][q] > 0
                fig.add_trace(circle(), row=1, col=col)
                fig.add_trace(
                    go.Scatter(
                        x=xy[:, 0], y=xy[:, 1], mode="markers+text",
                        text=[str(j) for j in range(len(xy))], textfont=dict(color="white", size=9),
                        marker=dict(
                            size=10 + 20 * c["W"][q], color=[COLOURS[k] for k in labels], opacity=0.8,
                            line=dict(width=np.where(inside, 2, 0), color="black"),
                        ),
                        hovertext=[
                            f"point {j}: W = {c['W'][q, j]:.2f}, in N({q}): {bool(inside[j])}"
                            for j in range(len(xy))
                        ],
                        hoverinfo="text", showlegend=False,
                    ),
                    row=1, col=col,
                )
                fig.add_trace(
                    go.Scatter(
                        x=[xy[q, 0]], y=[xy[q, 1]], mode="markers", hoverinfo="skip",
                        marker=dict(size=40, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
                        showlegend=False,
                    ),
                    row=1, col=col,
                )
            square(fig).update_layout(width=760, height=400)
            fig.show()
            """
        ),
        md(
            """
            ## How the gradients move the points

            Now let each loss move the points. We treat the 12 embeddings themselves as the
            parameters and take plain gradient-descent steps (in real training the gradient flows
            on into the network's weights, but each embedding is pushed in the same direction).
            The panels show the batch after 0, 5, 20 and 60 steps: RLL on top, the contextual
            loss below.
            """
        ),
        code(
            """
            STEPS = [0, 5, 20, 60]


            def descend(loss, lr):
                \"\"\"Gradient descent on the points themselves; returns unit-length snapshots at
                STEPS and the loss at every step.\"\"\"
                x = embeddings.clone().requires_grad_(True)
                optimizer = torch.optim.SGD([x], lr=lr)
                snapshots, history = {0: embeddings.numpy()}, []
                for step in range(1, STEPS[-1] + 1):
                    optimizer.zero_grad()
                    value = loss(x, labels)
                    value.backward()
                    optimizer.step()
                    history.append(value.item())
                    if step in STEPS:
                        snapshots[step] = F.normalize(x.detach(), dim=1).numpy()
                return snapshots, history


            runs = {"RLL": descend(rll, lr=0.3), "contextual": descend(contextual, lr=0.3)}

            fig = make_subplots(
                rows=2, cols=len(STEPS),
                subplot_titles=[f"{name}, step {s}" for name in runs for s in STEPS],
                vertical_spacing=0.06, horizontal_spacing=0.02,
            )
            for row, (snapshots, _) in enumerate(runs.values(), start=1):
                for col, step in enumerate(STEPS, start=1):
                    fig.add_trace(circle(), row=row, col=col)
                    fig.add_trace(points(snapshots[step], labels, size=12), row=row, col=col)
            square(fig).update_layout(width=1000, height=540)
            fig.show()
            """
        ),
        code(
            """
            fig = go.Figure(
                [go.Scatter(y=history, name=name, mode="lines") for name, (_, history) in runs.items()]
            )
            fig.update_layout(
                width=600, height=320, xaxis_title="step", yaxis_title="loss",
                title="Loss during the descent (each loss on its own scale)",
            )
            fig.show()
            rows = {}
            for name, (snapshots, history) in runs.items():
                final = snapshots[STEPS[-1]]
                d = rll.explain(torch.from_numpy(final), labels)["distances"][7]  # from point 7
                nearest = [j for j in np.argsort(d) if j != 7][:3]
                rows[name] = {
                    "loss at step 1": round(history[0], 4),
                    f"loss at step {STEPS[-1]}": round(history[-1], 4),
                    "angle of point 7 before": round(float(angles[7]), 2),
                    "angle of point 7 after": round(float(np.arctan2(final[7, 1], final[7, 0]) % (2 * np.pi)), 2),
                    "classes of 7's 3 nearest points after": [int(labels[j]) for j in nearest],
                }
            pd.DataFrame(rows)
            """
        ),
        md(
            """
            What the pictures and the table show, for this one hand-made batch (not a general
            law):

            * **RLL** moves only points in active pairs; pairs that already respect their boundary
              feel nothing, so classes keep some spread (a ball of diameter $\\alpha - m$). Point
              7 itself hardly moves: its two closest negatives sit on either side of it and
              their pushes cancel, while the pull toward its distant positives is weak. Instead
              the class-0 points, for which point 7 is the hardest negative, move away from it:
              class 0 **splits in two around the odd point**. That is one way a single wrong
              label can damage a class (notebook 03 looks at this at scale).
            * The **contextual loss** fixes *neighbourhoods*: point 7 leaves class 0 and joins
              class 1, and the loss drops close to 0 within a few steps. Its gradient through the
              neighbourhood masks is the heuristic straight-through one, not the exact gradient
              of $L_{ctx}$ (which is zero almost everywhere); the contrastive hinge and the
              regulariser add their own pushes.
            * Both runs use the same learning rate, but the two losses have different gradient
              scales, so compare *where* the points go, not how fast.
            * 2 dimensions are cramped: real embeddings have 64 to 512 dimensions, where classes
              can be separated without crowding each other on a circle.

            Next, notebook 02 trains a real (small) network with both losses and measures
            retrieval.
            """
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 02: train both losses on digits and look at the failures
# --------------------------------------------------------------------------------------------------


def train_and_evaluate() -> list[Cell]:
    """Cells of ``02_train_and_evaluate.ipynb``."""
    return [
        md(
            """
            # 2 · Train both losses on digits, measure retrieval, look at the failures

            This notebook trains a small network with each loss, embeds the test images,
            measures retrieval with the library's evaluation (faiss nearest neighbours), draws a
            2-D map of the embeddings, and shows the ranked lists of the queries that fail worst.
            Everything goes through `dmlviz`: `dmlviz.train` trains and writes a *run
            directory*, `dmlviz.evaluate` scores it, `dmlviz.project` draws maps. The runs are
            written to a temporary folder, not into the repository.

            It runs on a CPU in well under a minute, because the data are tiny.
            """
        ),
        code(
            """
            import os

            # UMAP compiles its code with numba on first use (30-40 s). On a few hundred points the
            # plain-Python path is quicker, so switch the compiler off before umap is imported.
            os.environ["NUMBA_DISABLE_JIT"] = "1"
            os.environ.setdefault("OMP_NUM_THREADS", "1")

            import tempfile
            from pathlib import Path

            import numpy as np
            import pandas as pd
            import plotly.express as px
            import plotly.graph_objects as go
            import torch
            from plotly.subplots import make_subplots

            from dmlviz.evaluate import evaluate_run, retrieval_metrics
            from dmlviz.models import build_model
            from dmlviz.project import trustworthiness_score, umap_projection
            from dmlviz.train import compute_embeddings, default_config, embed_run, train

            torch.set_num_threads(1)
            WORK = Path(tempfile.mkdtemp(prefix="dmlviz-notebook-02-"))
            print("runs go to", WORK)
            """
        ),
        md(
            """
            ## The data and the settings

            `digits` is scikit-learn's set of 1,797 handwritten digits, 8 × 8 pixels each,
            bundled with the library, so nothing is downloaded. Its default protocol in dmlviz is
            `"samples"`: half of each digit's images train, the other half test, so **the test
            digits are the same ten classes** as in training, seen in new handwriting.

            The usual metric-learning benchmarks (CUB-200, Cars196, SOP) are *class-disjoint*:
            the test classes never appear in training, and retrieval measures whether the
            embedding generalises to new kinds of things. dmlviz offers that for digits as
            `protocol="classes"` (train on 0-4, test on 5-9), but with only five training
            classes of 8 × 8 images the learnt features transferred worse to the unseen digits
            than an untrained network's when these defaults were chosen (test MAP@R fell from
            about 0.47 to about 0.3 for every loss; see the note in `dmlviz/train/config.py`), so
            it is a poor place to compare losses. Keep this in mind when reading the numbers
            below.

            `default_config(dataset, loss)` gives every setting; we only shorten training to 10
            epochs and force the CPU. Each batch holds `batch_size / m_per_class` digits with
            `m_per_class` images each, so every image has positives in its batch. The loss
            hyperparameters are left at their defaults (`loss_kwargs` is empty, and
            `preset_source` records that they are the paper defaults, not tuned for digits).
            """
        ),
        code(
            """
            LOSSES = ("rll", "contextual")
            configs = {}
            for loss in LOSSES:
                config = default_config("digits", loss)
                config.update(epochs=10, eval_every=5, device="cpu", tensorboard=False)
                configs[loss] = config

            shown = ["protocol", "model", "embedding_dim", "epochs", "batch_size", "m_per_class",
                     "optimizer", "lr", "schedule", "loss", "loss_kwargs", "preset_source"]
            pd.DataFrame({loss: {key: str(configs[loss][key]) for key in shown} for loss in LOSSES})
            """
        ),
        md(
            """
            ## Training

            `train(config, out)` runs the loop and writes a run directory: `config.json`, the
            weights, `metrics.jsonl` (one record per epoch) and `labels.npz`. Every
            `eval_every` epochs it also measures MAP@R on the test split, which we plot next to
            the training loss. The two losses are on different scales, so each gets its own
            panel; only their shapes are comparable.
            """
        ),
        code(
            """
            runs = {loss: train(configs[loss], WORK / loss, progress=False) for loss in LOSSES}
            COLOURS = {"rll": "#636efa", "contextual": "#ef553b"}

            fig = make_subplots(rows=1, cols=2, subplot_titles=["training loss", "test MAP@R during training"])
            for loss, run in runs.items():
                log = run.metrics()
                fig.add_trace(
                    go.Scatter(x=log["epoch"], y=log["loss"], name=loss, legendgroup=loss,
                               line_color=COLOURS[loss]),
                    row=1, col=1,
                )
                evaluated = log.dropna(subset=["map@r"])
                fig.add_trace(
                    go.Scatter(x=evaluated["epoch"], y=evaluated["map@r"], name=loss, legendgroup=loss,
                               line_color=COLOURS[loss], mode="lines+markers", showlegend=False),
                    row=1, col=2,
                )
            fig.update_xaxes(title_text="epoch")
            fig.update_layout(width=900, height=340)
            fig.show()
            """
        ),
        md(
            """
            ## Measuring retrieval: what MAP@R means

            Every test image is used as a query against all the other test images, ranked by
            cosine similarity. Suppose the query's class has $R$ other images in the test set.
            A perfect embedding puts exactly those $R$ images in the first $R$ places.

            * **Recall@K** (R@K): the share of queries with *at least one* same-class image in
              their top $K$. R@1 asks only "is the nearest neighbour right?", which is easy to
              saturate: a query can score 1 while the rest of its list is a mess.
            * **R-precision**: the share of same-class images among the first $R$ results.
            * **MAP@R** (mean average precision at R; Musgrave et al., 2020): for one query,
              $\\mathrm{AP@R} = \\frac{1}{R} \\sum_{i=1}^{R} P(i)\\,\\mathrm{rel}(i)$, where
              $\\mathrm{rel}(i)$ is 1 if the $i$-th result is of the query's class and $P(i)$ is
              the precision of the first $i$ results. It is 1 only when the first $R$ results are
              all correct, and it rewards putting correct results *early*. MAP@R is its mean over
              queries. It is the headline number in dmlviz because it keeps separating good
              embeddings after R@1 has saturated.
            * **NMI**: how well k-means clusters of the embeddings match the classes.

            `embed_run` writes the embeddings of the train and test splits into the run;
            `evaluate_run` computes the metrics and per-query tables and stores them in the run
            (this is what the dashboard reads). For scale we add two reference points computed
            with the same `retrieval_metrics`: the raw pixels, and the same network *before*
            training.
            """
        ),
        code(
            """
            rows = {}
            for loss, run in runs.items():
                embed_run(run, device="cpu")
                rows[f"{loss} (trained)"] = evaluate_run(run)["test"]

            test_set = runs["rll"].dataset("test")
            pixels = np.stack([test_set[i][0].numpy().ravel() for i in range(len(test_set))])
            rows["raw pixels"] = retrieval_metrics(pixels, test_set.labels).metrics
            torch.manual_seed(0)
            untrained = build_model(**runs["rll"].model_kwargs())
            rows["untrained network"] = retrieval_metrics(
                compute_embeddings(untrained, test_set), test_set.labels
            ).metrics

            columns = ["map@r", "r_precision", "recall@1", "recall@4", "nmi", "num_queries"]
            results = pd.DataFrame(rows).T[columns].astype(float)
            results.round(3)
            """
        ),
        md(
            """
            Read the table honestly. On 8 × 8 digits the raw pixels are already a strong
            baseline for the *nearest* neighbour (R@1), because the test digits are the training
            digits in new handwriting. The columns to watch are MAP@R and R-precision, which look
            at the whole top-$R$ list: that is where a learnt embedding has to earn its keep.
            Ten epochs with untuned defaults say little about which loss is better in general;
            notebook 03 and `dmlviz sweep` repeat runs over seeds and noise rates.
            """
        ),
        code(
            """
            best = results.loc[[f"{loss} (trained)" for loss in LOSSES], "map@r"]
            print(f"test MAP@R: " + ", ".join(f"{name} {value:.3f}" for name, value in best.items()))
            print(f"raw pixels {results.loc['raw pixels', 'map@r']:.3f}, "
                  f"untrained network {results.loc['untrained network', 'map@r']:.3f}")
            """
        ),
        md(
            """
            ## A map of the test embeddings

            UMAP squeezes the 64-dimensional embeddings into 2-D while trying to keep each point's
            nearest neighbours nearby. Read it for *who is next to whom*: the sizes of clusters
            and the distances between them are not meaningful. The **trustworthiness** score
            (1 = every neighbour on the map is a true neighbour, about 0.5 = random) says how far
            to trust the picture.

            To stay fast on a CPU we map a stratified sample of 30 test images per digit with 60
            optimisation epochs. `dmlviz.project.project_run(run)` maps whole splits with full
            settings and caches the result in the run directory, which is what the dashboard
            shows.
            """
        ),
        code(
            """
            rng = np.random.default_rng(0)
            sample = np.sort(np.concatenate([
                rng.choice(np.flatnonzero(test_set.labels == c), 30, replace=False)
                for c in range(test_set.num_classes)
            ]))
            frames = []
            for loss, run in runs.items():
                embeddings, labels = run.embeddings("test")
                coords = umap_projection(embeddings[sample], n_epochs=60, seed=0)
                trust = trustworthiness_score(embeddings[sample], coords)["trustworthiness"]
                per_query = run.per_query("test").set_index("query")
                frames.append(pd.DataFrame({
                    "x": coords[:, 0], "y": coords[:, 1], "digit": labels[sample].astype(str),
                    "image": sample, "AP@R": per_query.loc[sample, "ap@r"].round(2).to_numpy(),
                    "map": f"{loss} (trustworthiness {trust:.2f})",
                }))
            maps = pd.concat(frames)
            fig = px.scatter(
                maps, x="x", y="y", color="digit", facet_col="map", hover_data=["image", "AP@R"],
                category_orders={"digit": [str(d) for d in range(10)]},
                color_discrete_sequence=px.colors.qualitative.T10,
            )
            fig.for_each_annotation(lambda a: a.update(text=a.text.removeprefix("map=")))
            fig.update_xaxes(matches=None, showticklabels=False, title_text="")
            fig.update_yaxes(matches=None, showticklabels=False, title_text="")
            fig.update_layout(width=950, height=450, title="UMAP of 300 test embeddings")
            fig.show()
            """
        ),
        md(
            """
            ## The queries that fail

            `evaluate_run` also stores a per-query table (`run.per_query("test")`): each query's
            label, its $R$, its AP@R, and `first_correct_rank`, the position of the first
            same-class result. Sorting by AP@R finds the worst queries. Do both losses fail on
            the same images? Each point below is one test query.
            """
        ),
        code(
            """
            per_query = {loss: run.per_query("test").set_index("query") for loss, run in runs.items()}
            both = pd.DataFrame({loss: table["ap@r"] for loss, table in per_query.items()})
            both["digit"] = test_set.labels[both.index].astype(str)
            fig = px.scatter(
                both.reset_index(), x=LOSSES[0], y=LOSSES[1], color="digit", hover_data=["query"],
                opacity=0.6, color_discrete_sequence=px.colors.qualitative.T10,
                category_orders={"digit": [str(d) for d in range(10)]},
                labels={LOSSES[0]: f"AP@R with {LOSSES[0]}", LOSSES[1]: f"AP@R with {LOSSES[1]}"},
            )
            fig.update_layout(width=560, height=480)
            fig.show()
            print(f"correlation of per-query AP@R between the losses: {both[LOSSES[0]].corr(both[LOSSES[1]]):.2f}")
            print("mean AP@R per digit:")
            both.groupby("digit")[list(LOSSES)].mean().round(3).T
            """
        ),
        md(
            """
            Finally the ranked lists themselves. Each row is one of the worst queries of a run
            (the query image first, framed in black), followed by its 8 nearest test images; a
            title gives each result's digit, with ✓ for the query's class and ✗ otherwise. Often
            the failure is understandable: an unusual way of writing the digit, or a digit that
            really looks like another one at 8 × 8 pixels.
            """
        ),
        code(
            """
            def ranked_lists(run, queries, shown=8):
                \"\"\"The query image and its first ``shown`` neighbours, one row per query.\"\"\"
                neighbours, similarities = run.neighbours("test")
                dataset = run.dataset("test")
                titles, images = [], []
                for q in queries:
                    label = dataset.labels[q]
                    titles.append(f"query: {label}")
                    images.append(dataset.image(q))
                    for j in neighbours[q, :shown]:
                        mark = "✓" if dataset.labels[j] == label else "✗"
                        titles.append(f"{mark} {dataset.labels[j]}")
                        images.append(dataset.image(j))
                fig = make_subplots(rows=len(queries), cols=shown + 1, subplot_titles=titles,
                                    horizontal_spacing=0.01, vertical_spacing=0.08)
                for index, image in enumerate(images):
                    row, col = divmod(index, shown + 1)
                    rgb = np.asarray(image.convert("RGB"))
                    fig.add_trace(go.Image(z=rgb), row=row + 1, col=col + 1)
                    if col == 0:
                        fig.add_shape(type="rect", x0=-0.5, y0=-0.5, x1=rgb.shape[1] - 0.5, y1=rgb.shape[0] - 0.5,
                                      line=dict(color="black", width=3), row=row + 1, col=1)
                fig.update_xaxes(visible=False)
                fig.update_yaxes(visible=False)
                fig.update_annotations(font_size=11)
                fig.update_layout(width=820, height=115 * len(queries) + 60, margin=dict(t=50, b=10),
                                  title=f"{run.name}: the 4 test queries with the lowest AP@R")
                return fig


            for loss, run in runs.items():
                worst = per_query[loss].sort_values(["ap@r", "first_correct_rank"], ascending=[True, False])
                print(loss)
                display(worst.head(4)[["label", "r", "ap@r", "r_precision", "first_correct_rank"]])
                ranked_lists(run, worst.index[:4].tolist()).show()
            """
        ),
        md(
            """
            ## Where to go from here

            * The same views, interactive and for every run in a folder:
              `dmlviz dashboard <runs folder>`. The runs of this notebook are in the folder
              printed at the top (a temporary folder, deleted by your system eventually).
            * Notebook 03 adds label noise to the training labels and asks which loss suffers
              less, and whether the embedding itself can point at the wrong labels.
            """
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 03: label noise
# --------------------------------------------------------------------------------------------------


def label_noise_lab() -> list[Cell]:
    """Cells of ``03_label_noise_lab.ipynb``."""
    return [
        md(
            """
            # 3 · Label-noise lab

            Real training sets contain wrong labels: a mis-click, an ambiguous image, a
            crowd-worker guessing. This notebook asks three questions on a small, fast example:

            1. How much does a share of wrong training labels hurt retrieval?
            2. Do the Ranked List Loss and the contextual loss suffer differently? (The
               contextual-loss paper claims it is "more robust to label noise".)
            3. Can the trained embedding itself point at the wrong labels?

            We flip a known share of the training labels with `dmlviz.data.inject_label_noise`,
            train both losses with `dmlviz.train.train`, and score the runs with
            `dmlviz.evaluate`. The runs go to a temporary folder.
            """
        ),
        code(
            """
            import os

            os.environ.setdefault("OMP_NUM_THREADS", "1")

            import tempfile
            from pathlib import Path

            import numpy as np
            import pandas as pd
            import plotly.express as px
            import plotly.graph_objects as go
            import torch
            from plotly.subplots import make_subplots

            from dmlviz.data import inject_label_noise, load_dataset
            from dmlviz.evaluate import evaluate_run
            from dmlviz.experiments.reports import summarize
            from dmlviz.views.lab import comparison_text
            from dmlviz.train import default_config, embed_run, train

            torch.set_num_threads(1)
            WORK = Path(tempfile.mkdtemp(prefix="dmlviz-notebook-03-"))
            print("runs go to", WORK)
            """
        ),
        md(
            """
            ## Injecting label noise

            **Symmetric** noise picks an exact share of the training images at random and gives
            each a uniformly random *other* class. (dmlviz also has `"pair"` noise, always the
            next class, and `"nearest_class"` noise, the most similar class, which mimics the
            confusions a person makes and is harder to detect.) Noise only touches the training
            split: the test labels stay clean, so test MAP@R measures the true quality of the
            embedding.

            Below, 20 % symmetric noise on the digits training split: each row is a true digit,
            each column the label the network will be told. The diagonal holds the labels that
            were kept.
            """
        ),
        code(
            """
            base = default_config("digits", "rll")
            train_set = load_dataset("digits", split="train", protocol=base["protocol"], seed=base["split_seed"])
            noisy = inject_label_noise(
                train_set.labels, rate=0.2, kind="symmetric", seed=0, num_classes=train_set.num_classes
            )
            print(f"{len(noisy.clean)} training images, {noisy.flipped.sum()} labels flipped ({noisy.flipped.mean():.0%})")
            confusion = pd.crosstab(
                pd.Series(noisy.clean, name="true digit"), pd.Series(noisy.observed, name="label given")
            )
            fig = px.imshow(confusion, text_auto=True, color_continuous_scale="Blues")
            fig.update_layout(width=520, height=460, title="20 % symmetric noise")
            fig.show()
            """
        ),
        md(
            """
            ## Why wrong labels hurt

            A metric-learning loss turns labels into pairs: same label means *pull together*,
            different label means *push apart*. A flipped image, say a 3 labelled 8, becomes a
            positive of every 8 and a negative of every other 3. So the loss drags it toward the
            8s and pushes the real 3s away from it, exactly the wrong way (notebook 01 showed one
            such point splitting its neighbours' class). With many flips the clusters get looser
            and overlap, and a query's same-class images are no longer all at the top of its
            list.

            The two losses meet a flipped image differently. RLL with $T_n = 10$ gives most
            weight to the *hardest* negatives, and a flipped image's true class-mates look
            exactly like hard negatives. The contextual loss compares neighbourhoods rather than
            single pairs, which the paper argues makes it more tolerant. Whether that shows here
            is an empirical question, so we measure.

            ## The experiment

            Both losses × noise rates 0 %, 20 %, 40 % × 2 seeds = 12 short runs (10 epochs
            each; about a second per run on a CPU). Setting `noise_rate` in the config makes
            `train` call `inject_label_noise` itself and store the labels it trained on in the
            run (`run.labels()`); the seed sets both the flips and the network's initialisation.
            After training, `embed_run` and `evaluate_run` compute test retrieval and the
            neighbour consistency of the training split.
            """
        ),
        code(
            """
            LOSSES, RATES, SEEDS = ("rll", "contextual"), (0.0, 0.2, 0.4), (0, 1)
            runs = {}
            for seed in SEEDS:
                for rate in RATES:
                    for loss in LOSSES:
                        config = default_config("digits", loss)
                        config.update(
                            epochs=10, eval_every=0, device="cpu", tensorboard=False,
                            noise_kind="symmetric", noise_rate=rate, noise_seed=seed, seed=seed,
                        )
                        run = train(config, WORK / f"{loss}-noise{round(rate * 100)}-seed{seed}", progress=False)
                        embed_run(run, device="cpu")
                        evaluate_run(run)
                        runs[loss, rate, seed] = run

            # the run trained on exactly the labels we injected above (same rate, kind and seed)
            assert np.array_equal(runs["rll", 0.2, 0].labels().observed, noisy.observed)
            table = pd.DataFrame([run.summary() for run in runs.values()])
            table[["loss", "noise_rate", "seed", "map@r", "recall@1", "consistency_clean",
                   "consistency_flipped", "detector_auroc"]].round(3)
            """
        ),
        md(
            """
            ## Retrieval under noise

            Mean over the two seeds, with the seeds' standard deviation as error bars. Test
            MAP@R is measured on clean test labels; R@1 is shown next to it for contrast.
            """
        ),
        code(
            """
            summary = summarize(table)
            long = pd.concat(
                [
                    summary.assign(metric=metric, value=summary[f"{metric}_mean"], std=summary[f"{metric}_std"])
                    for metric in ("map@r", "recall@1")
                ]
            )
            fig = px.line(
                long, x="noise_rate", y="value", error_y="std", color="loss", facet_col="metric",
                markers=True, labels={"noise_rate": "share of flipped training labels", "value": ""},
            )
            fig.for_each_annotation(lambda a: a.update(text=a.text.removeprefix("metric=")))
            fig.update_yaxes(range=[0, 1.02])  # one scale for both: small wiggles stay small
            fig.update_xaxes(tickformat=".0%", tickvals=list(RATES))
            fig.update_layout(width=900, height=380, title="Test retrieval vs. training-label noise")
            fig.show()
            print(comparison_text(table))
            """
        ),
        md(
            """
            What to read from this (and what not to):

            * In these runs **MAP@R falls with noise while R@1 hardly moves.** The nearest neighbour of a test digit
              is still usually right, but its list of same-class images gets mixed with other
              digits. This is why dmlviz reports MAP@R: R@1 alone would hide the damage.
            * Compare the losses both on their **level** (which is better at each rate) and on
              their **drop** from 0 % to 40 %; the sentence above is computed from the table,
              not written in advance.
            * This is 2 seeds of 10 epochs on 8 × 8 digits with untuned, paper-default
              hyperparameters. It shows how to run the comparison, not which loss is more robust
              in general; for that use more seeds, real datasets and tuned settings
              (`dmlviz sweep`, `dmlviz tune`).
            """
        ),
        md(
            """
            ## Finding the flipped labels: neighbour consistency

            Idea: a network learns the patterns shared by many images before it memorises
            exceptions. So even when trained on noisy labels, a flipped 3 (labelled 8) tends to
            land among the other 3s. Its label then disagrees with its neighbours.

            For every training image, **neighbour consistency** is the share of its $k = 10$
            nearest training images (in the learnt embedding, itself excluded) that carry the
            *same observed label*. Clean images inside a clean cluster score near 1; flipped
            images score low. So `noise_score = 1 - consistency` ranks images by how suspect
            their label is, without ever looking at the true labels.

            Since we know which labels we flipped, we can grade this detector:

            * `consistency_clean` / `consistency_flipped`: mean consistency of kept / flipped
              labels;
            * **detector AUROC**: the probability that a randomly chosen flipped image gets a
              higher noise score than a randomly chosen clean one (0.5 = guessing, 1 = perfect);
            * `top_precision`: among the $F$ most suspect images, where $F$ is the number of
              flipped labels, the share that really were flipped.
            """
        ),
        code(
            """
            noisy_rates = summary[summary["noise_rate"] > 0]
            noisy_rates[["loss", "noise_rate", "seeds", "consistency_clean_mean",
                         "consistency_flipped_mean", "detector_auroc_mean"]].round(3)
            """
        ),
        md(
            """
            How to read these numbers: `consistency_clean` falls as the noise rate rises even
            though those labels are right, because their neighbours include flipped class-mates.
            If the embedding grouped the training images perfectly by their *true* digit, a kept
            label would agree with about $1 - \\text{rate}$ of its neighbours, and a flipped one
            only with the few neighbours that were flipped to the same wrong digit (about
            $\\text{rate} / 9$ with 10 digits). Compare the table with those two values: when
            they are close, the network has learnt the true digits despite the wrong labels, and
            that is what makes the flips findable. (`clean_label_consistency`, printed below,
            measures the grouping by true digit directly.)
            """
        ),
        md(
            """
            The distribution behind those numbers, for one run at 40 % noise: the consistency
            of the kept labels against that of the flipped ones. The better the two histograms
            separate, the higher the AUROC.
            """
        ),
        code(
            """
            run = runs["contextual", 0.4, 0]
            consistency_summary, per_sample = run.consistency()
            fig = px.histogram(
                per_sample.assign(label=np.where(per_sample["flipped"], "flipped", "kept")),
                x="consistency_observed", color="label", barmode="overlay",
                histnorm="percent", opacity=0.7,
                labels={"consistency_observed": "share of the 10 nearest neighbours with the same given label"},
            )
            fig.update_traces(xbins=dict(start=-0.05, end=1.05, size=0.1))  # one bar per possible value
            fig.update_layout(width=700, height=360, title=f"{run.name}: neighbour consistency")
            fig.show()
            print({key: round(value, 3) if isinstance(value, float) else value
                   for key, value in consistency_summary.items()})
            """
        ),
        md(
            """
            ## The top suspects

            The 16 training images with the highest noise score in that run, with the label the
            network was given and the true label. Many images share the top score (every one of
            their 10 neighbours disagrees), so the order among them is arbitrary.
            """
        ),
        code(
            """
            dataset = run.dataset("train")
            suspects = per_sample.sort_values("noise_score", ascending=False, kind="stable").head(16)
            titles = [
                f"{'flipped' if row.flipped else 'correct'}: given {row.observed}, true {row.clean}"
                for row in suspects.itertuples()
            ]
            fig = make_subplots(rows=2, cols=8, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.12)
            for position, index in enumerate(suspects["index"]):
                image = np.asarray(dataset.image(int(index)).convert("RGB"))
                fig.add_trace(go.Image(z=image), row=position // 8 + 1, col=position % 8 + 1)
            fig.update_xaxes(visible=False)
            fig.update_yaxes(visible=False)
            fig.update_annotations(font_size=9)
            fig.update_layout(width=1000, height=330, margin=dict(t=60, b=10))
            fig.show()
            print(f"{suspects['flipped'].mean():.0%} of these 16 were flipped "
                  f"(the base rate is {per_sample['flipped'].mean():.0%}).")
            """
        ),
        md(
            """
            A caveat on the detector: it works here because 10 epochs are too few for this
            network to memorise the wrong labels, and symmetric noise scatters the flips over
            all classes. Trained much longer, a network can pull flipped images into their wrong
            class, and then their neighbours agree with the wrong label; `"nearest_class"` noise
            is also harder, because the flips go to look-alike classes. Try
            `noise_kind="nearest_class"` or `epochs=50` above to see how the numbers change.

            ## Explore it in the dashboard

            The dashboard shows all of this interactively for every run in a folder: the runs
            table, embedding maps, each query's ranked list, the neighbour-consistency view with
            the suspects, and the worst queries. Point it at the runs of this notebook:

            ```
            dmlviz dashboard <the folder printed at the top>
            ```

            or, from the repository, `make demo` trains a small digits sweep (contextual, RLL and
            multi-similarity at 0, 20 and 40 % noise) and opens the dashboard on it. The same
            experiment from the command line, with more seeds:

            ```
            dmlviz sweep --dataset digits --losses rll,contextual --noise 0,0.2,0.4 --seeds 0,1,2 --out runs/noise
            dmlviz dashboard runs/noise
            ```
            """
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 04: your own embeddings: import, worst queries, suspicious labels (nothing trained by dmlviz)
# --------------------------------------------------------------------------------------------------


def your_own_embeddings() -> list[Cell]:
    """Cells of ``04_your_own_embeddings.ipynb``."""
    return [
        md(
            """
            # 4 · Explore your own embeddings

            You already have a model: from pytorch-metric-learning, Open Metric Learning, timm,
            CLIP or production. dmlviz trains nothing here. It takes the model's embeddings as
            plain files, plus the labels and the image paths, and shows where retrieval fails:
            the **worst queries** and the **training labels that look wrong**.

            The "model trained elsewhere" below is scikit-learn's PCA of the digits' pixels (any
            array of one row per image would do). Some of its training labels are deliberately
            wrong: in real data you do not know which ones, and finding them is the point.
            """
        ),
        code(
            """
            import os

            os.environ.setdefault("OMP_NUM_THREADS", "1")

            import tempfile
            from pathlib import Path

            import numpy as np
            from IPython.display import HTML, display
            from sklearn.decomposition import PCA

            from dmlviz.data import inject_label_noise, load_dataset
            from dmlviz.evaluate import evaluate_run
            from dmlviz.runs import import_embeddings
            from dmlviz.views.consistency import suspicious_gallery_html, suspicious_samples
            from dmlviz.views.lens import LENS_CSS, query_card_html, ranked_list, ranked_strip_html, stored_ranking
            from dmlviz.views.thumbs import ThumbnailCache

            WORK = Path(tempfile.mkdtemp(prefix="dmlviz-notebook-04-"))
            print("files and runs go to", WORK)
            """
        ),
        md(
            """
            ## The files a user brings

            For each split: an `(n, d)` array of embeddings (`.npy` here; `.npz`, `.safetensors`,
            `.pt` and `.parquet` work too), one label per line, and one image path per line
            (relative to the list's folder). We write them from the digits: the embeddings are a
            32-dimensional PCA fitted on the training images, and 15 % of the training labels are
            flipped to another digit, the way a careless annotator would.
            """
        ),
        code(
            """
            files = WORK / "files"
            pca = None
            truth = {}
            for split in ("train", "test"):
                data = load_dataset("digits", split=split)
                pixels = data.images.reshape(len(data), -1).numpy()
                pca = pca or PCA(32, random_state=0).fit(pixels)
                np.save(WORK / f"{split}.npy", pca.transform(pixels))
                (files / split).mkdir(parents=True, exist_ok=True)
                for i in range(len(data)):
                    data.image(i).save(files / split / f"{i}.png")
                (WORK / f"{split}_paths.txt").write_text("".join(f"files/{split}/{i}.png\\n" for i in range(len(data))))
                labels = data.labels
                if split == "train":
                    noisy = inject_label_noise(labels, rate=0.15, seed=0, num_classes=data.num_classes)
                    labels, truth = noisy.observed, {"flipped": noisy.flipped}
                (WORK / f"{split}_labels.txt").write_text("".join(f"digit {c}\\n" for c in labels))
            print(sorted(p.name for p in WORK.iterdir()))
            print(f"{truth['flipped'].sum()} of {len(truth['flipped'])} training labels are wrong (dmlviz is not told)")
            """
        ),
        md(
            """
            ## Import

            `import_embeddings` checks everything before it writes: equal lengths, finite 2-D
            embeddings, at least two classes, files that are what their suffix says. It then
            writes a run directory like a trained run's, marked *imported*: the embeddings
            (stored with unit length: retrieval is by cosine similarity), the labels and the image
            paths. The command line does the same:

            ```
            dmlviz import --out runs/pca --embeddings test.npy --labels test_labels.txt --images test_paths.txt \\
              --train-embeddings train.npy --train-labels train_labels.txt --train-images train_paths.txt
            ```

            Then `evaluate_run` computes retrieval metrics per query on the test split and, on
            the train split, the **neighbour consistency** of each image: the share of its 10
            nearest neighbours that carry its label.
            """
        ),
        code(
            """
            run = import_embeddings(
                WORK / "runs" / "pca",
                WORK / "test.npy",
                WORK / "test_labels.txt",
                images=WORK / "test_paths.txt",
                train_embeddings=WORK / "train.npy",
                train_labels=WORK / "train_labels.txt",
                train_images=WORK / "train_paths.txt",
                name="PCA of the pixels",
            )
            results = evaluate_run(run)
            print(f"test MAP@R {results['test']['map@r']:.3f}, R@1 {results['test']['recall@1']:.3f}")
            names = run.dataset("test").class_names
            """
        ),
        md(
            """
            ## The worst queries

            Each test image is a query against the others. Its **AP@R** is 1 when the R images
            of its class (R = how many there are) are its R nearest neighbours. The lowest AP@R
            are the queries the model handles worst; the ranked list shows what it confused them
            with (green frame: same class, red: another).
            """
        ),
        code(
            """
            per_query = run.per_query("test").sort_values("ap@r")
            print(per_query[["query", "ap@r", "first_correct_rank"]].head(5).to_string(index=False))
            neighbours, similarities = run.neighbours("test")
            _, test_labels = run.embeddings("test")
            thumbs = ThumbnailCache(run.dataset("test"))
            worst = int(per_query["query"].iloc[0])
            ranking = stored_ranking(worst, neighbours, similarities, run.per_query("test"))
            ranked = ranked_list(ranking, test_labels, names, k=10)
            query = query_card_html(thumbs(worst), worst, names[test_labels[worst]])
            display(HTML(LENS_CSS + query + ranked_strip_html(ranked, thumbs.many(ranked["index"]))))
            """
        ),
        md(
            """
            ## The suspicious labels

            A wrong training label disagrees with its neighbourhood: a 3 labelled "digit 8" sits
            among 3s. Ranking the training images by that disagreement (`noise_score`, 1 minus
            the consistency) lists the labels worth a second look. dmlviz was never told which
            labels are wrong; since we know here, we can check how many of the top suspects are.
            """
        ),
        code(
            """
            _, per_sample = run.consistency()
            train_names = run.dataset("train").class_names
            top = suspicious_samples(per_sample, train_names, n=int(truth["flipped"].sum()))
            hits = truth["flipped"][top["index"]].mean()
            print(f"of the {len(top)} most suspicious training labels, {hits:.0%} are truly wrong "
                  f"(chance: {truth['flipped'].mean():.0%})")
            top["flipped"] = truth["flipped"][top["index"]]  # for the orange frames below
            shown = top.head(18)
            display(HTML(LENS_CSS + suspicious_gallery_html(shown, ThumbnailCache(run.dataset("train")).many(shown["index"]))))
            """
        ),
        md(
            """
            When you do know the true labels (as the noise lab does), pass them as
            `clean_labels=` (`--clean-labels`): the flipped ones are then marked on every page and
            the detector's AUROC is computed. To see all of it in the dashboard:

            ```
            dmlviz project <WORK>/runs/pca
            dmlviz dashboard <WORK>/runs
            ```
            """
        ),
    ]


NOTEBOOKS: dict[str, Callable[[], list[Cell]]] = {
    "01_losses_explained.ipynb": losses_explained,
    "02_train_and_evaluate.ipynb": train_and_evaluate,
    "03_label_noise_lab.ipynb": label_noise_lab,
    "04_your_own_embeddings.ipynb": your_own_embeddings,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` (a key of ``NOTEBOOKS``) as generated from this file."""
    return notebook(NOTEBOOKS[name]())


def render(name: str) -> str:
    """The exact file text of notebook ``name`` as this script writes it."""
    return nbformat.writes(build(name)) + "\n"


def stale(folder: Path = HERE) -> list[str]:
    """Names of the notebooks in ``folder`` that are missing or differ from what this file builds."""
    return [
        name
        for name in NOTEBOOKS
        if not (folder / name).exists()
        or (folder / name).read_text(encoding="utf-8") != render(name)
    ]


def main(argv: list[str] | None = None) -> int:
    """Write every notebook next to this file (or, with ``--check``, report stale ones); returns
    the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a notebook is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"{name} differs from build_notebooks.py; run it to regenerate", file=sys.stderr)
        return 1 if names else 0
    for name in NOTEBOOKS:
        (HERE / name).write_text(render(name), encoding="utf-8")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
