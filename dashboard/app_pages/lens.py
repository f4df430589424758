"""Query lens: one query's ranked list, each neighbour marked right or wrong, and the same query
under a second run."""

import math

import numpy as np
import streamlit as st
import ui

from dmlviz.runs import RunError
from dmlviz.views.lens import (
    difference_text,
    live_ranking,
    query_card_html,
    query_classes,
    rank_changes,
    rank_text,
    ranked_list,
    ranked_strip_html,
    stored_ranking,
    summary_line,
    worst_query,
)
from dmlviz.views.partners import partners
from dmlviz.views.runs import run_label
from dmlviz.views.style import MISSING

st.title("Query lens")
path, row, split = ui.need_split()
st.caption(
    "The query image and the images the embedding ranks nearest to it. A **green** frame (✓) has "
    "the query's true class, a **red** one (✗) does not. An orange **⚠ trained as …** tag marks an "
    "image whose training label was flipped by label noise: the loss was told the wrong class."
)
ui.lens_css()


def _ranking(run_path: str, index: int, top_k: int):
    """The stored ranking of ``index`` in ``run_path``'s split, or one computed now."""
    data = ui.split_data(run_path, split)
    if data.neighbours is not None:
        return data, stored_ranking(index, data.neighbours, data.similarities, data.per_query)
    embeddings, labels = ui.embeddings(run_path, split)
    return data, live_ranking(embeddings, labels, index, top_k)


try:
    data = ui.split_data(path, split)
except RunError as error:
    ui.show_error(error)
    st.stop()
n = len(data.labels)
names = ui.class_names(path, split)
thumbs = ui.thumbnails(path, split)
ref_split = data.reference_split
ref_thumbs = thumbs if ref_split == split else ui.thumbnails(path, ref_split)

worst = worst_query(data.per_query)
query = ui.get_query(split)
if query is None or not 0 <= query < n:
    query = worst
    ui.set_query(path, split, query)
if st.session_state.get("lens_index") != query:
    st.session_state["lens_index"] = query


def _set(index: int) -> None:
    ui.set_query(path, split, int(index))


controls = st.columns([2, 1, 1, 3])
controls[0].number_input(
    f"Query sample (0 to {n - 1})",
    min_value=0,
    max_value=n - 1,
    step=1,
    key="lens_index",
    on_change=lambda: _set(st.session_state["lens_index"]),
)


def _random() -> None:
    draws = st.session_state.get("lens_draws", 0)
    st.session_state["lens_draws"] = draws + 1
    _set(np.random.default_rng(draws).integers(n))


controls[1].button("Random", icon=":material/casino:", on_click=_random, width="stretch")
controls[2].button(
    "Worst",
    key="lens_worst",
    icon=":material/trending_down:",
    on_click=lambda: _set(worst),
    width="stretch",
    help="The query with the lowest AP@R",
)
top_k = int(data.neighbours.shape[1]) if data.neighbours is not None else 20
k = controls[3].slider(
    "Neighbours shown (K)", 3, max(3, min(top_k, 20)), min(10, top_k), key="lens_k"
)

try:
    data, ranking = _ranking(path, query, top_k)
except (RunError, ValueError) as error:
    ui.show_error(error)
    st.stop()
ranked = ranked_list(ranking, data.labels, names, data.observed, k, data.reference_labels)

query_class, observed_class = query_classes(query, data.labels, data.observed, names)

head = st.columns([1, 4])
head[0].html(query_card_html(thumbs(query), query, query_class, observed_class))
stats = ranking.stats
with head[1]:
    cells = st.columns(4)
    cells[0].metric(
        "AP@R",
        "-" if math.isnan(stats["ap@r"]) else f"{stats['ap@r']:.3f}",
        help="Average precision over the top R neighbours (R = other images of the "
        "query's class); 1 = all of them ranked first.",
    )
    first = stats["first_correct_rank"]
    cells[1].metric(
        "First correct rank",
        rank_text(first),
        help="Rank of the first neighbour with the query's class (1 = top hit; with ties, its "
        "expected rank over the orders of the tied neighbours).",
    )
    cells[2].metric(
        "R-precision",
        "-" if math.isnan(stats["r_precision"]) else f"{stats['r_precision']:.2f}",
        help="Share of the top R neighbours with the query's class.",
    )
    cells[3].metric("Correct in top K", f"{int(ranked['correct'].sum())} / {len(ranked)}")
    st.markdown(summary_line(stats))
    if ranking.source == "live":
        st.caption("Ranked now from the embeddings (this split has no stored evaluation).")

# -- the same query under a second run, side by side ---------------------------------------------
runs, _ = ui.all_runs()
others = partners(row, runs, ui.load_run, lambda run: run.has_embeddings(split))
partner = st.selectbox(
    "Compare with",
    others.options,
    key="lens_partner",
    format_func=lambda p: "no comparison" if p is None else others.label(p),
    help="The same query ranked by a second run of the same data. Preselected: another loss at "
    "the same noise rate, else the same loss at another rate.",
    disabled=not others.rows,
)

problem = None  # why the comparison run cannot rank this query (its files are broken)
if partner is not None:
    try:
        other_data, other_ranking = _ranking(partner, query, top_k)
        other_ranked = ranked_list(
            other_ranking,
            other_data.labels,
            names,
            other_data.observed,
            k,
            other_data.reference_labels,
        )
    except (RunError, ValueError, IndexError) as error:
        problem = error

if partner is None or problem is not None:  # this run's list alone
    st.subheader(f"Top {k}: {run_label(row)}")
    st.html(ranked_strip_html(ranked, ref_thumbs.many(ranked["index"])))
    if problem is not None:
        st.warning(
            f"**{others.label(partner)}** cannot be compared: {problem}. Choose another run "
            "under *Compare with*.",
            icon=":material/warning:",
        )
    elif not others.rows:
        st.caption("No other run ranks the same images (same dataset and split) to compare with.")
    st.stop()

changes = rank_changes(ranked, other_ranked)
moves = dict(zip(changes["index"], changes["move"], strict=True))

left, right = st.columns(2, gap="medium")
for column, title, table, stats_, strip_moves in (
    (left, run_label(row), ranked, ranking.stats, None),
    (right, others.label(partner), other_ranked, other_ranking.stats, moves),
):
    with column:
        ap = stats_["ap@r"]
        st.markdown(
            f"**{title}**  \nAP@R {'-' if math.isnan(ap) else f'{ap:.3f}'} · "
            f"{int(table['correct'].sum())} / {len(table)} correct in the top {k}"
        )
        st.html(ranked_strip_html(table, ref_thumbs.many(table["index"]), strip_moves))
delta = other_ranking.stats["ap@r"] - ranking.stats["ap@r"]
if not math.isnan(delta):
    st.markdown(
        f"**ΔAP@R (right − left): {delta:+.3f}.** Tags on the right list show how each image "
        "moved: ↑ ranked higher than on the left, ↓ lower, *new*: not in the left top K."
    )
if data.per_query is not None and other_data.per_query is not None:  # both evaluated this split
    st.markdown(difference_text(data.per_query, other_data.per_query))
with st.expander("Rank changes as a table"):
    st.dataframe(
        changes.rename(columns={"rank_a": "rank (left run)", "rank_b": "rank (right run)"}),
        hide_index=True,
        width="stretch",
        placeholder=MISSING,
        column_config={
            "rank (left run)": st.column_config.NumberColumn(help=f"{MISSING}: not in its top K."),
            "rank (right run)": st.column_config.NumberColumn(help=f"{MISSING}: not in its top K."),
        },
    )
