"""Neighbour consistency: do a sample's nearest neighbours agree with its training label? Flipped
labels disagree, so disagreement is a detector of label noise."""

import streamlit as st
import ui

from dmlviz.runs import RunError
from dmlviz.views.consistency import (
    across_runs,
    clean_labels_known,
    consistency_histogram,
    detector_roc,
    precision_at,
    suspicious_gallery_html,
    suspicious_samples,
)
from dmlviz.views.runs import run_label

ui.follow_to_lens()
st.title("Neighbour consistency")
st.caption(
    "**Neighbour consistency** of a training image is the share of its k nearest neighbours (in "
    "the embedding space) whose training label equals its own. A loss that resists label noise "
    "keeps a flipped image among its true class, so its neighbours *disagree* with the wrong "
    "label: flipped images get low consistency, and ranking images by that disagreement finds "
    "them (the noise detector)."
)
path, row = ui.current_run()
notice = st.container()  # filled once the run is loaded: the offer of a noisy run
st.subheader(f"This run: {run_label(row)}")
try:
    data = ui.split_data(path, "train") if ui.load_run(path).has_embeddings("train") else None
except RunError as error:
    ui.show_error(error)
    data = None
if data is not None and data.consistency is not None:
    noise_free = not data.consistency["flipped"].any()
else:
    noise_free = row.get("noise_rate") == 0  # not when the rate is unknown
if noise_free:
    with notice:
        ui.offer_noisy_run(
            row,
            "there is nothing for the neighbours to detect: the flipped-label numbers and the "
            "detector's ROC stay empty",
            key="consistency_noisy_run",
        )
if data is None and row.get("imported"):
    st.info(
        "Imported without training embeddings: neighbour consistency needs them (`dmlviz import "
        "--train-embeddings ... --train-labels ...`)."
    )
elif data is None or data.consistency is None:
    st.info(
        f"No neighbour consistency for this run yet: run `dmlviz evaluate {path}` (it needs the "
        "train split's embeddings)."
    )
else:
    summary, per_sample = data.consistency_summary or {}, data.consistency
    k = summary.get("k")
    cells = st.columns(4)
    cells[0].metric("Consistency, kept labels", f"{summary.get('consistency_clean') or 0:.3f}")
    flipped_mean = summary.get("consistency_flipped")
    cells[1].metric(
        "Consistency, flipped labels", "-" if flipped_mean is None else f"{flipped_mean:.3f}"
    )
    n_flipped = int(per_sample["flipped"].sum())
    roc, auroc = detector_roc(per_sample)
    cells[2].metric(
        "Detector AUROC",
        "-" if auroc is None else f"{auroc:.3f}",
        help="Probability that a random flipped image looks more suspicious than a "
        "random clean one (0.5 = chance, 1 = perfect).",
    )
    top = precision_at(per_sample, n_flipped) if n_flipped else None
    cells[3].metric(
        "Precision at #flipped",
        "-" if top is None else f"{top:.2f}",
        help=f"Of the {n_flipped} most suspicious images, the share truly flipped.",
    )
    if row.get("imported") and not n_flipped:
        st.caption(
            "Imported without clean labels (`dmlviz import --clean-labels`): no label is known to "
            "be flipped, so the detector cannot be scored; the suspicious images are still ranked."
        )
    left, right = st.columns(2)
    left.plotly_chart(consistency_histogram(per_sample, k), key="consistency_hist")
    right.plotly_chart(roc, key="consistency_roc")

    st.subheader("Most suspicious training images")
    st.caption(
        "The images whose neighbours disagree most with their training label. An orange frame "
        "means the label really was flipped (the detector found it); a grey one is a false alarm, "
        "often an ambiguous image or one near another class."
    )
    count = st.slider("Images shown", 6, 60, 18, step=6, key="suspicious_n")
    names = ui.class_names(path, "train")
    table = suspicious_samples(per_sample, names, count)
    ui.lens_css()
    thumbnails = ui.thumbnails(path, "train").many(table["index"])
    st.html(suspicious_gallery_html(table, thumbnails, clean_labels_known(row.get("noise_rate"))))
    pick = st.selectbox(
        "Open one in the query lens",
        list(table["index"]),
        key="suspicious_pick",
        format_func=lambda i: f"#{i}",
    )
    st.button(
        "Open in the query lens",
        key="suspicious_open",
        icon=":material/manage_search:",
        on_click=ui.open_in_lens,
        args=(path, "train", int(pick)),
    )

st.subheader("Across runs")
st.caption("Mean over seeds per loss and noise rate (train split, finished runs).")
runs, _ = ui.all_runs()
frame = runs[runs["dataset"] == row.get("dataset")]
figures = across_runs(frame)
if not figures:
    st.info("No evaluated runs with neighbour consistency yet.")
for column, (index, figure) in zip(
    st.columns(max(1, len(figures))), enumerate(figures), strict=False
):
    column.plotly_chart(figure, key=f"across_{index}")
