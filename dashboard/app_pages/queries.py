"""Worst queries: every query of the split with its AP@R and first-correct rank; sort, filter,
export, and open one in the query lens."""

import streamlit as st
import ui

from dmlviz.runs import RunError
from dmlviz.views.queries import (
    PAGE_SIZE,
    SORT_KEYS,
    filter_queries,
    page_count,
    per_class_table,
    query_table,
    table_page,
    to_csv,
    with_images,
)
from dmlviz.views.runs import run_label
from dmlviz.views.style import MISSING

st.title("Worst queries")
path, row, split = ui.need_split()
st.caption(
    f"{run_label(row)} · **{split}** split. Every image is a query against the rest of the split. "
    "**AP@R** is 1 when its R nearest neighbours (R = other images of its class) all share its "
    "class; **first correct rank** is the position of the first neighbour that does. Each row "
    "shows the query and its nearest neighbour with their classes. Select a row to open that "
    "query in the query lens."
)
try:
    data = ui.split_data(path, split)
except RunError as error:
    ui.show_error(error)
    st.stop()
if data.per_query is None:
    st.info(f"This split is not evaluated yet: run `dmlviz evaluate {path}`.")
    st.stop()

reference_labels = data.labels if data.reference_labels is None else data.reference_labels
table = query_table(
    data.per_query, ui.class_names(path, split), data.neighbours, reference_labels, data.flipped
)

controls = st.columns([2, 2, 2, 1.2])
sort = controls[0].selectbox("Sort by", list(SORT_KEYS), key="queries_sort")
classes = controls[1].multiselect(
    "Classes", sorted(table["class"].unique()), key="queries_classes", placeholder="all classes"
)
ap_range = controls[2].slider("AP@R between", 0.0, 1.0, (0.0, 1.0), step=0.05, key="queries_ap")
missed = controls[3].toggle("Top-1 wrong", key="queries_missed")
shown = filter_queries(table, classes, ap_range, missed, sort)

cells = st.columns(3)
cells[0].metric("Queries shown", f"{len(shown)} / {len(table)}")
cells[1].metric("Mean AP@R (shown)", f"{shown['ap@r'].mean():.3f}" if len(shown) else "-")
cells[2].metric("Top-1 wrong (shown)", f"{int(shown['precision@1'].ne(1).sum())}")

# A page at a time, so only the rows on screen get thumbnails; back to page 1 when the list changes.
pages = page_count(len(shown))
listing = (path, split, sort, tuple(classes), tuple(ap_range), missed)
if st.session_state.get("_queries_listing") != listing:
    st.session_state["_queries_listing"] = listing
    st.session_state["queries_page"] = 1
st.session_state["queries_page"] = min(st.session_state.get("queries_page", 1), pages)
page = table_page(shown, st.session_state["queries_page"])
thumbs = ui.thumbnails(path, split)
ref_thumbs = thumbs if data.reference_split == split else ui.thumbnails(path, data.reference_split)
event = st.dataframe(
    with_images(page, thumbs, ref_thumbs).rename(
        columns={
            "ap@r": "AP@R",
            "r_precision": "R-precision",
            "first_correct_rank": "first correct rank",
            "r": "R",
        }
    ),
    hide_index=True,
    width="stretch",
    key="queries_table",
    on_select="rerun",
    selection_mode="single-row",
    height=620,
    row_height=84,
    placeholder=MISSING,
    column_order=[
        "query_image",
        "top1_image",
        "query",
        "AP@R",
        "R-precision",
        "first correct rank",
        "R",
        "flipped",
    ],
    column_config={
        "query_image": st.column_config.ImageColumn(
            "query", help="The query image and its class. Double-click to enlarge."
        ),
        "top1_image": st.column_config.ImageColumn(
            "top-1 neighbour",
            help="The image the embedding ranks nearest to the query, and its class.",
        ),
        "query": st.column_config.NumberColumn("#", help="The query's index in the split."),
        "AP@R": st.column_config.ProgressColumn("AP@R", format="%.3f", min_value=0, max_value=1),
        "R-precision": st.column_config.NumberColumn(format="%.3f"),
        "first correct rank": st.column_config.NumberColumn(
            format="%d", help=f"{MISSING}: no neighbour of its class in the stored list."
        ),
        "flipped": st.column_config.CheckboxColumn(
            "label flipped", help="The query's own training label was flipped by label noise."
        ),
    },
)
rows = (event or {}).get("selection", {}).get("rows", [])
if rows and rows[0] < len(page):
    ui.set_query(path, split, int(page["query"].iat[rows[0]]))
    st.switch_page("app_pages/lens.py")
left, right = st.columns([1, 3], vertical_alignment="bottom")
left.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key="queries_page")
first = (st.session_state["queries_page"] - 1) * PAGE_SIZE
right.caption(
    f"Rows {first + 1 if len(shown) else 0}–{first + len(page)} of {len(shown)}, "
    f"{PAGE_SIZE} a page."
)
st.download_button(
    "Download these queries as CSV",
    to_csv(shown),
    icon=":material/download:",
    file_name=f"{row.get('name')}-{split}-queries.csv",
    mime="text/csv",
)

with st.expander("Per class: which classes fail most"):
    st.dataframe(
        per_class_table(table),
        hide_index=True,
        width="stretch",
        column_config={
            "ap@r": st.column_config.ProgressColumn("AP@R", format="%.3f", min_value=0, max_value=1)
        },
    )
