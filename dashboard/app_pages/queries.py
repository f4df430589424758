"""Worst queries: every query of the split with its AP@R and first-correct rank; sort, filter,
export, and open one in the query lens."""

import streamlit as st
import ui

from dmlviz.runs import RunError
from dmlviz.views.queries import SORT_KEYS, filter_queries, per_class_table, query_table, to_csv
from dmlviz.views.runs import run_label

THUMBNAIL_ROWS = 100

st.title("Worst queries")
path, row, split = ui.need_split()
st.caption(
    f"{run_label(row)} · **{split}** split. Every image is a query against the rest of the split. "
    "**AP@R** is 1 when its R nearest neighbours (R = other images of its class) all share its "
    "class; **first correct rank** is the position of the first neighbour that does. Select a row "
    "to open that query in the query lens."
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
cells[2].metric("Top-1 wrong (shown)", f"{int(shown['first_correct_rank'].ne(1).sum())}")


# thumbnails for the first rows only: encoding one per query would stall on large splits
with_images = shown.copy()
first = with_images["query"].head(THUMBNAIL_ROWS)
with_images.insert(
    0, "image", ui.thumbnails(path, split).many(first) + [None] * (len(shown) - len(first))
)
event = st.dataframe(
    with_images.rename(
        columns={
            "ap@r": "AP@R",
            "r_precision": "R-precision",
            "first_correct_rank": "first correct rank",
            "top1_class": "top-1 class",
            "r": "R",
        }
    ),
    hide_index=True,
    width="stretch",
    key="queries_table",
    on_select="rerun",
    selection_mode="single-row",
    height=560,
    row_height=44,
    column_config={
        "image": st.column_config.ImageColumn(
            "image", width="small", help=f"The query's image (the first {THUMBNAIL_ROWS} rows)"
        ),
        "AP@R": st.column_config.ProgressColumn("AP@R", format="%.3f", min_value=0, max_value=1),
        "R-precision": st.column_config.NumberColumn(format="%.3f"),
        "first correct rank": st.column_config.NumberColumn(format="%d"),
    },
)
rows = (event or {}).get("selection", {}).get("rows", [])
if rows and rows[0] < len(shown):
    ui.set_query(path, split, int(shown["query"].iat[rows[0]]))
    st.switch_page("app_pages/lens.py")
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
