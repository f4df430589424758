# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Train both losses on digits, measure retrieval, look at the failures
#
# This notebook trains a small network with each loss, embeds the test images,
# measures retrieval with the library's evaluation (faiss nearest neighbours), draws a
# 2-D map of the embeddings, and shows the ranked lists of the queries that fail worst.
# Everything goes through `dmlviz`: `dmlviz.train` trains and writes a *run
# directory*, `dmlviz.evaluate` scores it, `dmlviz.project` draws maps. The runs are
# written to a temporary folder, not into the repository.
#
# It runs on a CPU in well under a minute, because the data are tiny.

# %%
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
from IPython.display import display
from plotly.subplots import make_subplots

from dmlviz import notebook
from dmlviz.evaluate import evaluate_run, retrieval_metrics
from dmlviz.models import build_model
from dmlviz.project import trustworthiness_score, umap_projection
from dmlviz.train import compute_embeddings, default_config, embed_run, train

notebook.use_offline_figures()  # every figure also kept as HTML that draws offline
torch.set_num_threads(1)
WORK = Path(tempfile.mkdtemp(prefix="dmlviz-notebook-02-"))
print("runs go to", WORK)

# %% [markdown]
# ## The data and the settings
#
# `digits` is scikit-learn's set of 1,797 handwritten digits, 8 × 8 pixels each,
# bundled with the library, so nothing is downloaded. Its default protocol in dmlviz is
# `"samples"`: half of each digit's images train, the other half test, so **the test
# digits are the same ten classes** as in training, seen in new handwriting.
#
# The usual metric-learning benchmarks (CUB-200, Cars196, SOP) are *class-disjoint*:
# the test classes never appear in training, and retrieval measures whether the
# embedding generalises to new kinds of things. dmlviz offers that for digits as
# `protocol="classes"` (train on 0-4, test on 5-9), but with only five training
# classes of 8 × 8 images the learnt features transferred worse to the unseen digits
# than an untrained network's when these defaults were chosen (test MAP@R fell from
# about 0.47 to about 0.3 for every loss; see the note in `dmlviz/train/config.py`), so
# it is a poor place to compare losses. Keep this in mind when reading the numbers
# below.
#
# `default_config(dataset, loss, presets="paper")` gives every setting, with each
# loss's hyperparameters as its paper sets them, the values notebook 01 explained
# (`presets="tuned"`, the default, would use values tuned on digits instead). We only
# shorten training to 10 epochs, force the CPU, and hold out a **validation** set,
# 20 % of each training digit's images (`val_fraction`), to watch during training:
# the test split is kept for the final measurement. Each batch holds
# `batch_size / m_per_class` digits with `m_per_class` images each, so every image
# has positives in its batch. The table shows what each run will train with, and the
# sentence below it is read from the same configs.

# %%
LOSSES = ("rll", "contextual")
configs = {}
for loss in LOSSES:
    config = default_config("digits", loss, presets="paper")
    config.update(epochs=10, eval_every=5, val_fraction=0.2, device="cpu", tensorboard=False)
    configs[loss] = config

shown = [
    "protocol",
    "model",
    "embedding_dim",
    "epochs",
    "batch_size",
    "m_per_class",
    "optimizer",
    "lr",
    "schedule",
    "loss",
    "loss_kwargs",
    "preset_source",
    "val_fraction",
]
rll, ctx = configs["rll"]["loss_kwargs"], configs["contextual"]["loss_kwargs"]
print(
    f"RLL: margin m = {rll['margin']}, alpha = {rll['alpha']}, T_n = {rll['tn']}; "
    f"contextual: k = {ctx['k']}, eps = {ctx['eps']} ({configs['rll']['preset_source']}); "
    f"m_per_class = {configs['contextual']['m_per_class']} images of each digit per batch"
)
pd.DataFrame({loss: {key: str(configs[loss][key]) for key in shown} for loss in LOSSES})

# %% [markdown]
# ## Training
#
# `train(config, out)` runs the loop and writes a run directory: `config.json`, the
# weights, `metrics.jsonl` (one record per epoch) and `labels.npz`. Every
# `eval_every` epochs it also measures MAP@R on the held-out splits; we plot the
# **validation** MAP@R next to the training loss. Choosing anything (the epochs, a
# learning rate, which loss to keep) by watching the test curve would leak the test set
# into the choice and make the final test number optimistic: that is *test-set
# peeking*, and the validation split exists to avoid it. The two losses are on
# different scales, so each gets its own panel; only their shapes are comparable.

# %%
runs = {loss: train(configs[loss], WORK / loss, progress=False) for loss in LOSSES}
COLOURS = {"rll": "#636efa", "contextual": "#ef553b"}

fig = make_subplots(
    rows=1, cols=2, subplot_titles=["training loss", "validation MAP@R during training"]
)
for loss, run in runs.items():
    log = run.metrics()
    fig.add_trace(
        go.Scatter(
            x=log["epoch"], y=log["loss"], name=loss, legendgroup=loss, line_color=COLOURS[loss]
        ),
        row=1,
        col=1,
    )
    evaluated = log.dropna(subset=["val_map@r"])
    fig.add_trace(
        go.Scatter(
            x=evaluated["epoch"],
            y=evaluated["val_map@r"],
            name=loss,
            legendgroup=loss,
            line_color=COLOURS[loss],
            mode="lines+markers",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
fig.update_xaxes(title_text="epoch")
fig.update_layout(width=900, height=340)
fig.show()

# %% [markdown]
# ## Measuring retrieval: what MAP@R means
#
# Every test image is used as a query against all the other test images, ranked by
# cosine similarity. Suppose the query's class has $R$ other images in the test set.
# A perfect embedding puts exactly those $R$ images in the first $R$ places.
#
# * **Recall@K** (R@K): the share of queries with *at least one* same-class image in
#   their top $K$. R@1 asks only "is the nearest neighbour right?", which is easy to
#   saturate: a query can score 1 while the rest of its list is a mess.
# * **R-precision**: the share of same-class images among the first $R$ results.
# * **MAP@R** (mean average precision at R; Musgrave et al., 2020): for one query,
#   $\mathrm{AP@R} = \frac{1}{R} \sum_{i=1}^{R} P(i)\,\mathrm{rel}(i)$, where
#   $\mathrm{rel}(i)$ is 1 if the $i$-th result is of the query's class and $P(i)$ is
#   the precision of the first $i$ results. It is 1 only when the first $R$ results are
#   all correct, and it rewards putting correct results *early*. MAP@R is its mean over
#   queries. It is the headline number in dmlviz because it keeps separating good
#   embeddings after R@1 has saturated.
# * **NMI**: how well k-means clusters of the embeddings match the classes.
#
# `embed_run` writes the embeddings of the train and test splits into the run;
# `evaluate_run` computes the metrics and per-query tables and stores them in the run
# (this is what the dashboard reads). For scale we add two reference points computed
# with the same `retrieval_metrics`: the raw pixels, and the same network *before*
# training.

# %%
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

# %% [markdown]
# Read the table honestly. On 8 × 8 digits the raw pixels are already a strong
# baseline for the *nearest* neighbour (R@1), because the test digits are the training
# digits in new handwriting. The columns to watch are MAP@R and R-precision, which look
# at the whole top-$R$ list: that is where a learnt embedding has to earn its keep.
# Ten epochs with the papers' settings (not tuned for digits) say little about which
# loss is better in general;
# notebook 03 and `dmlviz sweep` repeat runs over seeds and noise rates.

# %%
best = results.loc[[f"{loss} (trained)" for loss in LOSSES], "map@r"]
print("test MAP@R: " + ", ".join(f"{name} {value:.3f}" for name, value in best.items()))
print(
    f"raw pixels {results.loc['raw pixels', 'map@r']:.3f}, "
    f"untrained network {results.loc['untrained network', 'map@r']:.3f}"
)

# %% [markdown]
# ### AP@R in front of you
#
# Pick a test query of the RLL run, from its worst to its best: each bar is $P(i)$, the
# precision of the first $i$ results, green where the $i$-th result has the query's
# class (rel$(i) = 1$) and grey where not. Only green bars count, each divided by $R$;
# the black line adds them up and ends at the query's AP@R, next to the value
# `evaluate_run` stored.

# %%
notebook.ap_at_r(runs["rll"])

# %% [markdown]
# ### AP@R by hand
#
# **Exercise 1.** A query has $R = 4$ other images of its class, and its ranked list
# starts ✓ ✗ ✓ ✗ ✗ ✓ ✓ (✓ = same class). Compute its AP@R with the formula above:
# only the first $R$ places count. Replace `None` with your number. (The check
# computes the same list with `dmlviz.evaluate.retrieval_metrics`.)

# %%
ranked = [True, False, True, False, False, True, True]
answer = None  # a number between 0 and 1
notebook.check.ap_at_r(answer, ranked)

# %% [markdown]
# **Exercise 2.** Build a ranked list (a list of `True`/`False`, every image of the
# query's class in it) whose R@1 is 1 but whose AP@R is below 0.5: this is why R@1
# alone can hide a poor embedding.

# %%
answer = None  # e.g. [True, False, ...]
notebook.check.high_r1_low_map(answer)

# %% [markdown]
# ## A map of the test embeddings
#
# UMAP squeezes the 64-dimensional embeddings into 2-D while trying to keep each point's
# nearest neighbours nearby. Read it for *who is next to whom*: the sizes of clusters
# and the distances between them are not meaningful. The **trustworthiness** score
# (1 = every neighbour on the map is a true neighbour, about 0.5 = random) says how far
# to trust the picture.
#
# To stay fast on a CPU we map a stratified sample of 30 test images per digit with 60
# optimisation epochs. `dmlviz.project.project_run(run)` maps whole splits with full
# settings and caches the result in the run directory, which is what the dashboard
# shows.

# %%
rng = np.random.default_rng(0)
sample = np.sort(
    np.concatenate(
        [
            rng.choice(np.flatnonzero(test_set.labels == c), 30, replace=False)
            for c in range(test_set.num_classes)
        ]
    )
)
frames = []
for loss, run in runs.items():
    embeddings, labels = run.embeddings("test")
    coords = umap_projection(embeddings[sample], n_epochs=60, seed=0)
    trust = trustworthiness_score(embeddings[sample], coords)["trustworthiness"]
    per_query = run.per_query("test").set_index("query")
    frames.append(
        pd.DataFrame(
            {
                "x": coords[:, 0],
                "y": coords[:, 1],
                "digit": labels[sample].astype(str),
                "image": sample,
                "AP@R": per_query.loc[sample, "ap@r"].round(2).to_numpy(),
                "map": f"{loss} (trustworthiness {trust:.2f})",
            }
        )
    )
maps = pd.concat(frames)
fig = px.scatter(
    maps,
    x="x",
    y="y",
    color="digit",
    facet_col="map",
    hover_data=["image", "AP@R"],
    category_orders={"digit": [str(d) for d in range(10)]},
    color_discrete_sequence=px.colors.qualitative.T10,
)
fig.for_each_annotation(lambda a: a.update(text=a.text.removeprefix("map=")))
fig.update_xaxes(matches=None, showticklabels=False, title_text="")
fig.update_yaxes(matches=None, showticklabels=False, title_text="")
fig.update_layout(width=950, height=450, title="UMAP of 300 test embeddings")
fig.show()

# %% [markdown]
# ## The queries that fail
#
# `evaluate_run` also stores a per-query table (`run.per_query("test")`): each query's
# label, its $R$, its AP@R, and `first_correct_rank`, the position of the first
# same-class result. Sorting by AP@R finds the worst queries. Do both losses fail on
# the same images? Each point below is one test query.

# %%
per_query = {loss: run.per_query("test").set_index("query") for loss, run in runs.items()}
both = pd.DataFrame({loss: table["ap@r"] for loss, table in per_query.items()})
both["digit"] = test_set.labels[both.index].astype(str)
fig = px.scatter(
    both.reset_index(),
    x=LOSSES[0],
    y=LOSSES[1],
    color="digit",
    hover_data=["query"],
    opacity=0.6,
    color_discrete_sequence=px.colors.qualitative.T10,
    category_orders={"digit": [str(d) for d in range(10)]},
    labels={LOSSES[0]: f"AP@R with {LOSSES[0]}", LOSSES[1]: f"AP@R with {LOSSES[1]}"},
)
fig.update_layout(width=560, height=480)
fig.show()
print(
    f"correlation of per-query AP@R between the losses: {both[LOSSES[0]].corr(both[LOSSES[1]]):.2f}"
)
print("mean AP@R per digit:")
both.groupby("digit")[list(LOSSES)].mean().round(3).T


# %% [markdown]
# Finally the ranked lists themselves. Each row is one of the worst queries of a run
# (the query image first, framed in black), followed by its 8 nearest test images; a
# title gives each result's digit, with ✓ for the query's class and ✗ otherwise. Often
# the failure is understandable: an unusual way of writing the digit, or a digit that
# really looks like another one at 8 × 8 pixels.


# %%
def ranked_lists(run, queries, shown=8):
    """The query image and its first ``shown`` neighbours, one row per query."""
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
    fig = make_subplots(
        rows=len(queries),
        cols=shown + 1,
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=0.08,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, shown + 1)
        rgb = np.asarray(image.convert("RGB"))
        fig.add_trace(go.Image(z=rgb), row=row + 1, col=col + 1)
        if col == 0:
            fig.add_shape(
                type="rect",
                x0=-0.5,
                y0=-0.5,
                x1=rgb.shape[1] - 0.5,
                y1=rgb.shape[0] - 0.5,
                line=dict(color="black", width=3),
                row=row + 1,
                col=1,
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        width=820,
        height=115 * len(queries) + 60,
        margin=dict(t=50, b=10),
        title=f"{run.name}: the 4 test queries with the lowest AP@R",
    )
    return fig


for loss, run in runs.items():
    worst = per_query[loss].sort_values(["ap@r", "first_correct_rank"], ascending=[True, False])
    print(loss)
    display(worst.head(4)[["label", "r", "ap@r", "r_precision", "first_correct_rank"]])
    ranked_lists(run, worst.index[:4].tolist()).show()

# %% [markdown]
# ## Explore it: the map linked to the query lens
#
# `dmlviz.notebook.lens(run)` is the dashboard's query lens inside the notebook: a map
# of the test split (a PCA, made once and stored in the run), the query as a star and
# its top 10 as rings, and below it the ranked list with ✓/✗ by class. **Click any
# point** to make it the query, or pick one of the worst queries from the list. Without
# a running kernel (an HTML copy) you see a static picture of the worst query instead.

# %%
notebook.lens(runs["rll"])

# %% [markdown]
# ## Where to go from here
#
# * The same views, interactive and for every run in a folder:
#   `dmlviz dashboard <runs folder>`. The runs of this notebook are in the folder
#   printed at the top (a temporary folder, deleted by your system eventually).
# * Notebook 03 adds label noise to the training labels and asks which loss suffers
#   less, and whether the embedding itself can point at the wrong labels.
