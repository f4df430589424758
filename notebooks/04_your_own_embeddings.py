# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4 · Explore your own embeddings
#
# You already have a model: from pytorch-metric-learning, Open Metric Learning, timm,
# CLIP or production. dmlviz trains nothing here. It takes the model's embeddings as
# plain files, plus the labels and the image paths, and shows where retrieval fails:
# the **worst queries** and the **training labels that look wrong**.
#
# The "model trained elsewhere" below is scikit-learn's PCA of the digits' pixels (any
# array of one row per image would do). Some of its training labels are deliberately
# wrong: in real data you do not know which ones, and finding them is the point.

# %%
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import tempfile
from pathlib import Path

import numpy as np
from IPython.display import HTML, display
from sklearn.decomposition import PCA

from dmlviz import notebook
from dmlviz.data import inject_label_noise, load_dataset
from dmlviz.evaluate import evaluate_run
from dmlviz.runs import import_embeddings
from dmlviz.views.consistency import suspicious_gallery_html, suspicious_samples
from dmlviz.views.lens import (
    LENS_CSS,
    query_card_html,
    ranked_list,
    ranked_strip_html,
    stored_ranking,
)
from dmlviz.views.thumbs import ThumbnailCache

notebook.use_offline_figures()  # every figure also kept as HTML that draws offline
WORK = Path(tempfile.mkdtemp(prefix="dmlviz-notebook-04-"))
print("files and runs go to", WORK)

# %% [markdown]
# ## The files a user brings
#
# For each split: an `(n, d)` array of embeddings (`.npy` here; `.npz`, `.safetensors`,
# `.pt` and `.parquet` work too), one label per line, and one image path per line
# (relative to the list's folder). We write them from the digits, split by class as in
# the benchmarks: the digits 0-4 train and 5-9 test, so the test queries are digits the
# "model" never saw labelled. The embeddings are a 32-dimensional PCA fitted on the
# training images, and 15 % of the training labels are flipped to another digit, the way
# a careless annotator would. A label file holds each image's class name (`digit 7`),
# read from the dataset's `class_names`.

# %%
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
    (WORK / f"{split}_paths.txt").write_text(
        "".join(f"files/{split}/{i}.png\n" for i in range(len(data)))
    )
    labels = data.labels
    if split == "train":
        noisy = inject_label_noise(labels, rate=0.15, seed=0, num_classes=data.num_classes)
        labels, truth = noisy.observed, {"flipped": noisy.flipped}
    # a label file names the class: the digit itself (the test split's 5-9, not its indices 0-4)
    names = data.class_names
    (WORK / f"{split}_labels.txt").write_text("".join(f"digit {names[c]}\n" for c in labels))
print(sorted(p.name for p in WORK.iterdir()))
print(
    f"{truth['flipped'].sum()} of {len(truth['flipped'])} training labels are wrong (dmlviz is not told)"
)

# %% [markdown]
# ## Import
#
# `import_embeddings` checks everything before it writes: equal lengths, finite 2-D
# embeddings, at least two classes, files that are what their suffix says. It then
# writes a run directory like a trained run's, marked *imported*: the embeddings
# (stored with unit length: retrieval is by cosine similarity), the labels and the image
# paths. The command line does the same:
#
# ```
# dmlviz import --out runs/pca --embeddings test.npy --labels test_labels.txt --images test_paths.txt \
#   --train-embeddings train.npy --train-labels train_labels.txt --train-images train_paths.txt
# ```
#
# Then `evaluate_run` computes retrieval metrics per query on the test split and, on
# the train split, the **neighbour consistency** of each image: the share of its 10
# nearest neighbours that carry its label.

# %%
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

# %% [markdown]
# ## The worst queries
#
# Each test image is a query against the others. Its **AP@R** is 1 when the R images
# of its class (R = how many there are) are its R nearest neighbours. The lowest AP@R
# are the queries the model handles worst; the ranked list shows what it confused them
# with (green frame: same class, red: another).

# %%
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

# %% [markdown]
# The same in a widget: `notebook.lens(run)` draws a map of the imported test split
# (a PCA, stored in the run) linked to the ranked lists. Click a point to make it the
# query, or pick one of the worst queries; with no kernel running you see the worst
# query's picture.

# %%
notebook.lens(run)

# %% [markdown]
# ## The suspicious labels
#
# A wrong training label disagrees with its neighbourhood: a 3 labelled "digit 1" sits
# among 3s. Ranking the training images by that disagreement (`noise_score`, 1 minus
# the consistency) lists the labels worth a second look. dmlviz was never told which
# labels are wrong, so its cards show only the label trained on and the consistency;
# since this notebook made the flips, it can check how many of the top suspects are.

# %%
_, per_sample = run.consistency()
train_names = run.dataset("train").class_names
top = suspicious_samples(per_sample, train_names, n=int(truth["flipped"].sum()))
hits = truth["flipped"][top["index"]].mean()
print(
    f"of the {len(top)} most suspicious training labels, {hits:.0%} are truly wrong "
    f"(chance: {truth['flipped'].mean():.0%})"
)
shown = top.head(18)
thumbnails = ThumbnailCache(run.dataset("train")).many(shown["index"])
display(HTML(LENS_CSS + suspicious_gallery_html(shown, thumbnails, clean_known=False)))
print(
    f"of these {len(shown)}, the notebook's own record says "
    f"{int(truth['flipped'][shown['index']].sum())} were flipped: "
    + ", ".join(f"#{i}" for i in shown["index"][truth["flipped"][shown["index"]]])
)

# %% [markdown]
# The suspects beside the map: the training split's map linked to the lens, starting at
# the most suspicious image. Its neighbours show why it looks wrong; click any point on the
# map, or pick another suspect with `review.select(index)`.

# %%
review = notebook.lens(run, split="train")
review.select(int(top["index"].iloc[0]))
review

# %% [markdown]
# **Exercise 1.** A reviewer has time for 50 images. Among the 50 most suspicious
# training labels (highest `noise_score` in `per_sample`), what share is truly wrong?
# Use the notebook's own record `truth["flipped"]` (indexed like `per_sample["index"]`).
# Replace `None` with the share.

# %%
answer = None
notebook.check.precision_of_top(
    answer, per_sample["noise_score"], truth["flipped"][per_sample["index"]], 50
)

# %% [markdown]
# When you do know the true labels (as the noise lab does), pass them as
# `clean_labels=` (`--clean-labels`): the flipped ones are then marked on every page and
# the detector's AUROC is computed. To see all of it in the dashboard:
#
# ```
# dmlviz project <WORK>/runs/pca
# dmlviz dashboard <WORK>/runs
# ```
