"""Loss anatomy (teaching): a small batch of the run's stored embeddings, the loss's
hyperparameters as sliders, and heatmaps of what the loss computes, recomputed live."""

import numpy as np
import streamlit as st
import ui

from dmlviz.runs import RunError
from dmlviz.views.anatomy import (
    EXPLAINED_LOSSES,
    PARAMS,
    default_params,
    describe,
    draw_batch,
    explain,
    feasible_params,
    loss_terms,
    panels,
    tick_labels,
)
from dmlviz.views.embedding_map import class_names_of
from dmlviz.views.runs import run_label
from dmlviz.views.style import loss_name

st.title("Loss anatomy")
path, row, split = ui.need_split()
st.caption(
    f"A small batch drawn from the stored **{split}** embeddings of {run_label(row)}, fed to the "
    "loss exactly as in training. Move the sliders to see which pairs the loss acts on and how "
    "hard. Rows are anchors/queries i, columns the other samples j, grouped by class."
)
try:
    embeddings, labels = ui.embeddings(path, split)
    data = ui.split_data(path, split)
except RunError as error:
    ui.show_error(error)
    st.stop()

config = ui.load_run(path).config
run_loss = config.get("loss")
controls = st.columns(4)
loss = controls[0].selectbox(
    "Loss",
    EXPLAINED_LOSSES,
    format_func=loss_name,
    key="anatomy_loss",
    index=EXPLAINED_LOSSES.index(run_loss) if run_loss in EXPLAINED_LOSSES else 0,
)
classes = controls[1].slider("Classes in the batch", 2, 8, 4, key="anatomy_classes")
per_class = controls[2].slider("Images per class", 2, 8, 4, key="anatomy_per_class")
seed = controls[3].number_input("Batch seed", 0, 10_000, 0, key="anatomy_seed")
use_observed = False
if data.observed is not None and data.flipped is not None and data.flipped.any():
    use_observed = st.toggle(
        "Use the noisy labels the loss was trained with",
        value=True,
        key="anatomy_observed",
        help="Flipped samples (starred) then sit in the wrong class block, as during training.",
    )
st.markdown(describe(loss))

given = config.get("loss_kwargs") if run_loss == loss else None
defaults = default_params(loss, given)
with st.expander("Hyperparameters", expanded=True):
    if given:
        st.caption(
            f"Starting from this run's own settings ({config.get('preset_source') or 'as trained'})."
        )
    sliders = st.columns(4)
    params = {}
    for i, param in enumerate(PARAMS[loss]):
        value = sliders[i % 4].slider(
            param.name,
            param.low,
            param.high,
            defaults[param.name],
            param.step,
            help=param.help,
            key=f"anatomy_{loss}_{param.name}_{path}",
        )
        params[param.name] = int(value) if param.integer else float(value)
params, warning = feasible_params(loss, params)
if warning:
    st.warning(warning)

batch_labels_all = data.observed if use_observed else labels
try:
    batch = draw_batch(batch_labels_all, classes, per_class, int(seed))
    explained = explain(loss, params, embeddings[batch], batch_labels_all[batch])
except ValueError as error:
    ui.show_error(error)
    st.stop()

names = ui.class_names(path, split)
flipped = data.flipped[batch] if use_observed else None
ticks = tick_labels(batch, class_names_of(batch_labels_all[batch], names), flipped)
terms = loss_terms(loss, explained)
cells = st.columns(len(terms))
for cell, (name, value) in zip(cells, terms.items(), strict=True):
    cell.metric(name, f"{value:.0f}" if name == "active pairs" else f"{value:.4f}")

ui.lens_css()
thumbs = ui.thumbnails(path, split)
cards = "".join(
    f"<div class='dmlviz-card' style='width:64px'><img src='{thumbs(i)}' style='width:52px;height:52px'>"
    f"<div class='dmlviz-cap'>{tick}</div></div>"
    for i, tick in zip(batch, ticks, strict=True)
)
with st.expander("The batch", expanded=False):
    st.html(f"<div class='dmlviz-strip'>{cards}</div>")
    if use_observed and flipped is not None and flipped.any():
        st.caption(f"{int(np.sum(flipped))} starred image(s) carry a flipped label in this batch.")

shown = panels(loss, explained, ticks)
for start in range(0, len(shown), 2):
    columns = st.columns(2)
    for column, panel in zip(columns, shown[start : start + 2], strict=False):
        with column:
            st.markdown(f"**{panel.title}**")
            st.caption(panel.caption)
            st.plotly_chart(panel.figure, key=f"anatomy_panel_{start}_{panel.title}")
