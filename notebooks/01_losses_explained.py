# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1 · Two metric-learning losses you can see
#
# A metric-learning model maps each image to an *embedding*, a unit-length vector, so
# that images of the same class end up close together and images of different classes
# far apart. Retrieval then means: embed the query, return its nearest neighbours.
#
# The model learns this from a **loss** computed on a batch of embeddings and their
# labels. This notebook opens up the two losses of dmlviz:
#
# * the **Ranked List Loss** (RLL; Wang et al., CVPR 2019 / TPAMI 2021), which looks at
#   distances, and
# * the **contextual loss** (Liao, Tsiligkaridis & Kulis, ICML 2023), which looks at
#   *who your neighbours are*.
#
# The embeddings here have only 2 dimensions. Both losses first scale every embedding
# to length 1, so the whole batch lies on the unit circle and you can see every pair.
# Nothing is re-implemented: we build the library's losses with
# `dmlviz.losses.build(name)` and call their `explain(embeddings, labels)` method,
# which returns every intermediate quantity of the loss as numpy arrays.

# %%
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from IPython.display import display
from plotly.subplots import make_subplots

from dmlviz import notebook
from dmlviz.losses import build

notebook.use_offline_figures()  # every figure also kept as HTML that draws offline
torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## A toy batch
#
# Training batches in metric learning hold several images of each class (here 3 classes
# × 4 images), so that every sample has *positives* (same class) and *negatives* (other
# classes) in the batch. We place 12 points on the circle by hand. Classes 0 and 2 form
# compact groups, class 1 is spread out, and **point 7 has label 1 but sits in the
# middle of class 0**: a hard sample, or perhaps a mislabelled image.

# %%
angles = torch.tensor([0.0, 0.3, 0.6, 0.9, 2.0, 2.3, 2.6, 0.45, 4.1, 4.4, 4.7, 5.0])
labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
embeddings = torch.stack([angles.cos(), angles.sin()], dim=1)
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c"]


def circle(centre=(0.0, 0.0), radius=1.0, **line):
    """A circle as a line trace (the unit circle, or a distance boundary)."""
    t = np.linspace(0, 2 * np.pi, 200)
    return go.Scatter(
        x=centre[0] + radius * np.cos(t),
        y=centre[1] + radius * np.sin(t),
        mode="lines",
        line={"color": "lightgrey", "width": 1, **line},
        hoverinfo="skip",
        showlegend=False,
    )


def points(xy, labels, size=14, showlegend=False):
    """The batch as numbered markers coloured by class."""
    xy, labels = np.asarray(xy), np.asarray(labels)
    return go.Scatter(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="markers+text",
        text=[str(i) for i in range(len(xy))],
        textfont=dict(color="white", size=9),
        marker=dict(size=size, color=[COLOURS[c] for c in labels]),
        hovertext=[f"point {i}, class {c}" for i, c in enumerate(labels)],
        hoverinfo="text",
        showlegend=showlegend,
    )


def square(fig, limit=1.35):
    """Equal, fixed axis ranges in every panel so that circles look like circles."""
    fig.update_xaxes(range=[-limit, limit], visible=False)
    fig.update_yaxes(range=[-limit, limit], visible=False)
    fig.for_each_yaxis(lambda axis: axis.update(scaleanchor=axis.anchor or "x"))
    return fig.update_layout(plot_bgcolor="white")


fig = go.Figure([circle(), points(embeddings, labels, size=20)])
square(fig).update_layout(
    width=420, height=420, title="The batch: 3 classes × 4 points on the unit circle"
)
fig.show()

# %% [markdown]
# ## Ranked List Loss: active sets and weights
#
# RLL takes every sample in turn as the **query**; the rest of the batch is its ranked
# list. With unit vectors the distance $d_{ij} = \lVert e_i - e_j \rVert$ lies in
# $[0, 2]$. Two boundaries set the goal:
#
# * negatives should be farther than $\alpha$ (the negative boundary),
# * positives should be closer than $\alpha - m$ (the positive boundary, $m$ the margin).
#
# Only pairs that break their rule take part. These are the **active** (non-trivial)
# sets of query $i$:
#
# * $P^*_i$ = positives with $d_{ij} > \alpha - m$ (too far away),
# * $N^*_i$ = negatives with $d_{ij} < \alpha$ (too close).
#
# Pairs that already satisfy their rule cost nothing, so a class is only squeezed into a
# ball of diameter $\alpha - m$, not onto a single point.
#
# Inside each active set the pairs are **weighted**. A negative gets
# $w^-_{ij} = \exp(T_n(\alpha - d_{ij}))$, normalised to sum to 1 over $N^*_i$: with
# $T_n = 10$ the closest (hardest) negatives dominate. Positives use $T_p = 0$ here, so
# every active positive counts the same. The per-query losses are weighted averages of
# the violations,
#
# $$L_P(i) = \sum_{j \in P^*_i} w^+_{ij}\,(d_{ij} - (\alpha - m)), \qquad
#   L_N(i) = \sum_{j \in N^*_i} w^-_{ij}\,(\alpha - d_{ij}),$$
#
# and the batch loss is the mean over queries of $\tfrac12 (L_P(i) + L_N(i))$. An empty
# set contributes 0. The weights are treated as constants, and (as in the official
# code) each pair moves only its query.
#
# The defaults are $m = 0.4$ and $\alpha = 1 + m/2 = 1.2$ (the TPAMI "RLL-Simpler"
# setting), so positives should be within 0.8 and negatives beyond 1.2.

# %%
rll = build("rll")
print(rll)
r = rll.explain(embeddings, labels)
print("explain() keys:", sorted(r))

# the documented default: alpha = None means 1 + margin / 2
alpha = 1 + rll.margin / 2 if rll.alpha is None else rll.alpha
positive_boundary = alpha - rll.margin
print(f"alpha = {alpha:.2f}, positive boundary alpha - m = {positive_boundary:.2f}")

# %% [markdown]
# Below, each panel is one query (the large ring). The dashed circles around it are the
# two boundaries: positives outside the **green** circle (radius $\alpha - m$) are
# active, negatives inside the **red** circle (radius $\alpha$) are active. Lines join
# the query to its active pairs; the line width is the pair's normalised weight.

# %%
queries = [0, 4, 7]
xy = embeddings.numpy()
fig = make_subplots(rows=1, cols=len(queries), subplot_titles=[f"query {q}" for q in queries])
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
                    x=[xy[q, 0], xy[j, 0]],
                    y=[xy[q, 1], xy[j, 1]],
                    mode="lines",
                    line=dict(color=colour, width=1 + 8 * weights[q, j]),
                    hovertext=f"{q}→{j}: d = {r['distances'][q, j]:.2f}, "
                    f"weight = {weights[q, j]:.2f}",
                    hoverinfo="text",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
    fig.add_trace(points(xy, labels), row=1, col=col)
    fig.add_trace(
        go.Scatter(
            x=[xy[q, 0]],
            y=[xy[q, 1]],
            mode="markers",
            hoverinfo="skip",
            marker=dict(size=26, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
            showlegend=False,
        ),
        row=1,
        col=col,
    )
square(fig, limit=2.3).update_layout(
    width=1000, height=380, title="RLL: active positives (green) and negatives (red)"
)
fig.show()

# %% [markdown]
# The table lists, for every query, how many pairs are active and its two losses. Read it
# with the picture: a query whose positives are all within the green circle has
# $L_P = 0$; one with no negative inside the red circle has $L_N = 0$. Point 7 is the
# outlier: its class-mates are far away and the class-0 points around it are close, so
# both of its terms are large.

# %%
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

# %% [markdown]
# How sharp is the negative weighting? For query 7, the weights of its active negatives
# against their distance: with $T_n = 10$ a negative that is 0.1 closer gets
# $e^{1} \approx 2.7$ times the weight.

# %%
q = 7
active = np.flatnonzero(r["negative_mask"][q])
pd.DataFrame(
    {
        "negative": active,
        "distance": r["distances"][q, active].round(3),
        "weight": r["negative_weights"][q, active].round(3),
    }
).sort_values("distance")

# %% [markdown]
# ### RLL as learning to rank, and what its settings do
#
# RLL treats each query's batch as a **ranked list** to be sorted as a *set*: every
# positive must come before every negative, with a gap $m$ between the two sets. It
# generalises the classic pair losses: with one positive and one negative per query
# and no weighting it is a triplet loss with margin $m$; with a single pair at a time
# and fixed thresholds it is the contrastive loss. Three settings shape it:
#
# * the **gap** $m$ stops pulling positives once they are inside $\alpha - m$, so a
#   class keeps a spread instead of collapsing to a point (which helps the embedding
#   keep intra-class variation that later retrieval can use);
# * $T_n$ and $T_p$ are temperatures: $T_n$ sharpens the negative weights toward the
#   hardest negatives, $T_p$ (0 here) would do the same for the farthest positives;
# * the **imbalance** $\lambda$ weighs the negative part against the positive part,
#   because a query has many more negatives than positives.
#
# Move the sliders below: the heatmaps are `rll.explain(...)` of this batch, redrawn
# with your settings, and the last slider moves point 7 around the circle. With a large
# $T_n$ all of a query's negative weight goes to its single closest negative; at
# $T_n = 0$ every active negative counts the same.


# %%
def with_point_moved(index, angle):
    """The batch with point ``index`` moved to ``angle`` on the unit circle."""
    moved = angles.clone()
    moved[index] = angle
    return torch.stack([moved.cos(), moved.sin()], dim=1).numpy()


rll_view = notebook.anatomy(
    embeddings.numpy(),
    "rll",
    labels.numpy(),
    panels=("Active pairs", "Negative weights"),
)
point_7 = widgets.FloatSlider(
    value=float(angles[7]),
    min=0.0,
    max=6.2,
    step=0.05,
    description="point 7's angle",
    style={"description_width": "initial"},
)


def move_point_7(change):
    rll_view.embeddings = with_point_moved(7, change["new"])
    rll_view.redraw()


point_7.observe(move_point_7, names="value")
display(point_7)
rll_view

# %% [markdown]
# **Exercise 1.** Without running anything, read the circle and the boundaries (with
# the defaults: positives should be within 0.8, negatives beyond 1.2): which samples
# are in **query 8's** active positive set $P^*_8$ and active negative set $N^*_8$?
# Replace `None` with two lists of point numbers, `([...], [...])`, and run the cell.

# %%
answer = None  # e.g. ([9, 10], [7])
notebook.check.active_sets(answer, r, query=8)

# %% [markdown]
# ## Contextual loss: neighbourhoods and contextual similarity
#
# The contextual loss does not ask "how far apart are $i$ and $j$?" but "do $i$ and
# $j$ have the same neighbours?". Step by step, as in the paper's code:
#
# 1. **Similarities.** $S = f f^\top$ (cosine similarity) and the squared distance
#    $D = 2 - 2S$.
# 2. **Neighbourhoods.** $N(i)$ holds the $k$ nearest points of $i$, itself included,
#    plus any point within a small slack $\varepsilon$ of the $k$-th distance. Here
#    $k = 4$, the number of images per class, so in a perfect embedding $N(i)$ is
#    exactly $i$'s class.
# 3. **Overlap.** $A_{ij} = |N(i) \cap N(j)| / |N(i)|$ (shared neighbours) and
#    $B_{ij} = |\bar N(i) \cap \bar N(j)| / |\bar N(i)|$ (shared non-neighbours);
#    $\tilde W_{ij} = \tfrac12 (A_{ij} + B_{ij})$ for $j \in N(i)$ and 0 otherwise.
# 4. **Query expansion.** Each row of $\tilde W$ is averaged over the *mutual*
#    $k/2$-neighbours $R(i)$ of $i$ (with $k = 4$: $i$ and its mutual nearest
#    neighbour, if it has one).
# 5. **Symmetrise.** $W = \tfrac12(\hat W + \hat W^\top)$, the **contextual
#    similarity**, between 0 and 1.
#
# The contextual term asks $W$ to equal the label matrix $Y$ ($Y_{ij} = 1$ for the same
# class, 0 otherwise):
# $L_{ctx} = \frac{1}{n^2} \sum_{i \ne j} (W_{ij} - Y_{ij})^2$.
#
# Membership of a neighbourhood is a step function, whose true gradient is zero almost
# everywhere. The paper's **heuristic gradient** pretends, on the way back, that every
# step had slope 10 (a straight-through estimator), so the loss can still move the
# points. The full loss adds a contrastive hinge on $S$ (positives pulled above cosine
# 0.75, negatives pushed below 0.6) and a small regulariser that pulls the batch-mean
# cosine toward $\rho$: $0.4\,L_{ctx} + 0.5\,L_{con} + 0.1\,L_{reg}$ with the
# defaults (the paper's 256 px recipe).

# %%
contextual = build("contextual")
print(contextual)
c = contextual.explain(embeddings, labels)
print("explain() keys:", sorted(c))
print(
    f"L_ctx = {float(c['L_ctx']):.4f}, L_con = {float(c['L_con']):.4f}, "
    f"L_reg = {float(c['L_reg']):.4f}, loss = {float(c['loss']):.4f}"
)

# %% [markdown]
# The matrices side by side (row $i$, column $j$): the labels $Y$ the loss aims for, the
# neighbourhood mask $N$, the contextual similarity $W$, and the per-pair error
# $(W - Y)^2$. Look at row and column 7: its neighbourhood is made of class-0 points, so
# $W$ links it to class 0 and not to its own class, and the error lights up there.

# %%
panels = {
    "Y (labels)": c["Y"],
    "N (neighbourhoods)": c["N"],
    "W (contextual similarity)": c["W"],
    "(W - Y)²": (c["W"] - c["Y"]) ** 2,
}
fig = make_subplots(rows=1, cols=4, subplot_titles=list(panels), horizontal_spacing=0.04)
for col, matrix in enumerate(panels.values(), start=1):
    fig.add_trace(
        go.Heatmap(z=matrix, zmin=0, zmax=1, colorscale="Viridis", showscale=col == 4),
        row=1,
        col=col,
    )
    fig.update_yaxes(autorange="reversed", dtick=1, row=1, col=col)
    fig.update_xaxes(dtick=1, row=1, col=col)
fig.update_layout(width=1100, height=330)
fig.show()

# %% [markdown]
# The same on the circle for two queries. The ring marks the query; points of its
# neighbourhood $N(i)$ have a black outline; a point's size is its contextual
# similarity $W_{ij}$ to the query.

# %%
queries = [0, 7]
fig = make_subplots(
    rows=1, cols=len(queries), subplot_titles=[f"neighbourhood of {q}" for q in queries]
)
for col, q in enumerate(queries, start=1):
    inside = c["N"][q] > 0
    fig.add_trace(circle(), row=1, col=col)
    fig.add_trace(
        go.Scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers+text",
            text=[str(j) for j in range(len(xy))],
            textfont=dict(color="white", size=9),
            marker=dict(
                size=10 + 20 * c["W"][q],
                color=[COLOURS[k] for k in labels],
                opacity=0.8,
                line=dict(width=np.where(inside, 2, 0), color="black"),
            ),
            hovertext=[
                f"point {j}: W = {c['W'][q, j]:.2f}, in N({q}): {bool(inside[j])}"
                for j in range(len(xy))
            ],
            hoverinfo="text",
            showlegend=False,
        ),
        row=1,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=[xy[q, 0]],
            y=[xy[q, 1]],
            mode="markers",
            hoverinfo="skip",
            marker=dict(size=40, color="rgba(0,0,0,0)", line=dict(width=2, color="black")),
            showlegend=False,
        ),
        row=1,
        col=col,
    )
square(fig).update_layout(width=760, height=400)
fig.show()

# %% [markdown]
# ### Contextual similarity as k-reciprocal re-ranking
#
# The idea comes from **re-ranking** in person re-identification (Zhong et al., 2017):
# two images are truly alike when each appears in the other's nearest neighbours
# (*k-reciprocal* neighbours), and the overlap of two neighbour sets is measured like a
# **Jaccard** index, $|N(i) \cap N(j)| / |N(i) \cup N(j)|$. The contextual loss makes
# that re-ranking differentiable and trains with it:
#
# * $A$ is the neighbour overlap (normalised by $|N(i)|$ rather than the union);
# * $B$ adds agreement on who is **not** a neighbour: it separates two points that
#   merely are far apart from everything from two points that share their context;
# * **query expansion** ($R$, $\hat W$) averages a row over the point's mutual close
#   neighbours, so one odd neighbour cannot decide the similarity alone;
# * $k$ should match the number of images per class in a batch (`m_per_class`): a
#   perfect neighbourhood is then exactly the class. With a larger $k$ the
#   neighbourhoods spill into other classes; with a smaller one a class splits.
#
# The widget walks through the steps (the `step` slider) on this batch, with the
# contextual loss's sliders above it: try `k` from 2 to 8 and watch $N$ and $W$, and
# `eps`, which lets near-ties into a neighbourhood.

# %%
notebook.anatomy(
    embeddings.numpy(), "contextual", labels.numpy(), panels=("W: contextual similarity",)
)

# %% [markdown]
# **Exercise 2.** With $k = 4$ (the default above), which points form the neighbourhood
# $N(3)$ of point 3? Remember that a point counts itself. Replace `None` with a list.

# %%
answer = None  # e.g. [3, 0, 1, 2]
notebook.check.neighbourhood(answer, c, point=3)

# %% [markdown]
# ## How the gradients move the points
#
# Now let each loss move the points. We treat the 12 embeddings themselves as the
# parameters and take plain gradient-descent steps (in real training the gradient flows
# on into the network's weights, but each embedding is pushed in the same direction).
# The panels show the batch after 0, 5, 20 and 60 steps: RLL on top, the contextual
# loss below.

# %%
STEPS = [0, 5, 20, 60]


def descend(loss, lr):
    """Gradient descent on the points themselves; returns unit-length snapshots at
    STEPS and the loss at every step."""
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
    rows=2,
    cols=len(STEPS),
    subplot_titles=[f"{name}, step {s}" for name in runs for s in STEPS],
    vertical_spacing=0.06,
    horizontal_spacing=0.02,
)
for row, (snapshots, _) in enumerate(runs.values(), start=1):
    for col, step in enumerate(STEPS, start=1):
        fig.add_trace(circle(), row=row, col=col)
        fig.add_trace(points(snapshots[step], labels, size=12), row=row, col=col)
square(fig).update_layout(width=1000, height=540)
fig.show()

# %%
fig = go.Figure(
    [go.Scatter(y=history, name=name, mode="lines") for name, (_, history) in runs.items()]
)
fig.update_layout(
    width=600,
    height=320,
    xaxis_title="step",
    yaxis_title="loss",
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
        "angle of point 7 after": round(
            float(np.arctan2(final[7, 1], final[7, 0]) % (2 * np.pi)), 2
        ),
        "classes of 7's 3 nearest points after": [int(labels[j]) for j in nearest],
    }
pd.DataFrame(rows)

# %% [markdown]
# What the pictures and the table show, for this one hand-made batch (not a general
# law):
#
# * **RLL** moves only points in active pairs; pairs that already respect their boundary
#   feel nothing, so classes keep some spread (a ball of diameter $\alpha - m$). Point
#   7 itself hardly moves: its two closest negatives sit on either side of it and
#   their pushes cancel, while the pull toward its distant positives is weak. Instead
#   the class-0 points, for which point 7 is the hardest negative, move away from it:
#   class 0 **splits in two around the odd point**. That is one way a single wrong
#   label can damage a class (notebook 03 looks at this at scale).
# * The **contextual loss** fixes *neighbourhoods*: point 7 leaves class 0 and joins
#   class 1, and the loss drops close to 0 within a few steps. Its gradient through the
#   neighbourhood masks is the heuristic straight-through one, not the exact gradient
#   of $L_{ctx}$ (which is zero almost everywhere); the contrastive hinge and the
#   regulariser add their own pushes.
# * Both runs use the same learning rate, but the two losses have different gradient
#   scales, so compare *where* the points go, not how fast.
# * 2 dimensions are cramped: real embeddings have 64 to 512 dimensions, where classes
#   can be separated without crowding each other on a circle.
#
# Next, notebook 02 trains a real (small) network with both losses and measures
# retrieval.
