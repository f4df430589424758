"""Embedding map: a 2-D map of the current run's split; click a point to open it in the query lens,
lasso a region to list its samples. A split without a map gets PCA at once and UMAP in the
background (``dmlviz.project.background``), shown when it is ready."""

import streamlit as st
import ui

from dmlviz.project.background import prepare_maps, start_umap, umap_progress
from dmlviz.runs import RunError
from dmlviz.views.data import map_methods, split_stamp
from dmlviz.views.deck_map import deck_chart, deck_clicked, every_point_note, points_layer, use_deck
from dmlviz.views.embedding_map import (
    COLOR_OPTIONS,
    color_options,
    default_color,
    map_figure,
    sample_note,
    selected_indices,
    selection_table,
    trust_note,
    umap_progress_notice,
)
from dmlviz.views.runs import run_label
from dmlviz.views.style import MISSING

MAX_TABLE_ROWS = 500
UMAP_POLL_S = 2.0  # how often the page reads a background UMAP's progress
WAITING_KEY = "_map_waiting_umap"  # [run, split] whose background UMAP the page is showing
START_ERROR_KEY = "_map_start_error"  # why the last "Compute UMAP" click could not start it


def _start_umap(run, split: str) -> None:
    """The button's callback: start UMAP; a problem is shown on the rerun."""
    try:
        start_umap(run, split)
    except RunError as error:
        st.session_state[START_ERROR_KEY] = str(error)


def _umap_progress(run, split: str) -> None:
    """The background UMAP's progress bar; a full rerun once it has finished or failed."""
    record = umap_progress(run, split)
    if record is not None and record.get("state") != "running":
        st.rerun()
    fraction, text = umap_progress_notice(record)
    st.progress(fraction, text=text)


st.title("Embedding map")
path, row, split = ui.need_split()
st.caption(
    f"{run_label(row)} · **{split}** split. Each point is an image, placed so that images with "
    "similar embeddings land close together. **Click** a point to make it the query of the query "
    "lens; pick the **lasso** or box tool in the chart's toolbar to list a region's images below."
)
try:
    run = ui.load_run(path)
    prepared = prepare_maps(run, split)
    methods = map_methods(run, split)  # never empty: prepare_maps stored PCA where none was
    if "umap" in methods and st.session_state.get(WAITING_KEY) == [path, split]:
        st.session_state["map_method"] = "umap"  # the UMAP this page waited for is ready
        del st.session_state[WAITING_KEY]
    left, right = st.columns([1, 2])
    method = left.radio(
        "Projection",
        methods,
        horizontal=True,
        format_func=str.upper,
        key="map_method",
        help="UMAP keeps local neighbourhoods (clusters); PCA keeps global directions (honest "
        "distances, blurrier clusters).",
    )
    frame, meta = ui.map_data(path, split, method)
    data = ui.split_data(path, split)
except RunError as error:
    ui.show_error(error)
    st.stop()

if prepared is not None:
    st.info(
        f"This split had no map yet: PCA was computed now, and UMAP is being computed in the "
        f"background and stored in the run, as `dmlviz project {path} --splits {split}` would.",
        icon=":material/info:",
    )
if "umap" not in methods:
    job = umap_progress(run, split)
    if job is not None and job.get("state") == "running":
        st.session_state[WAITING_KEY] = [path, split]
        st.fragment(run_every=UMAP_POLL_S)(_umap_progress)(run, split)
    else:
        if job is not None and job.get("state") == "failed":
            st.warning(f"Computing UMAP failed: {job.get('error')}", icon=":material/warning:")
        if START_ERROR_KEY in st.session_state:
            ui.show_error(RunError(st.session_state.pop(START_ERROR_KEY)))
        st.button(
            "Compute UMAP in the background",
            key="map_start_umap",
            icon=":material/scatter_plot:",
            on_click=_start_umap,
            args=(run, split),
            help=f"As `dmlviz project {path} --splits {split}` would; PCA stays shown meanwhile.",
        )

options = color_options(frame)
color_by = right.selectbox(
    "Colour by",
    options,
    index=options.index(default_color(frame)),
    format_func=lambda k: COLOR_OPTIONS[k][0],
    key=f"map_color_{split}",
    help="AP@R: how well the image retrieves its own class (red = fails). Neighbour consistency: "
    "share of its nearest neighbours sharing its training label (red = its label looks wrong).",
)
if color_by == "flipped" and not frame["flipped"].any():
    ui.offer_noisy_run(row, "no point is coloured as flipped", key="map_noisy_run")


def _take_click(event) -> None:
    """One selected point (a click) becomes the lens query."""
    chosen = selected_indices(event, frame)
    if len(chosen) == 1 and 0 <= chosen[0] < len(frame):
        ui.set_query(path, split, chosen[0])


def _take_deck_click() -> None:
    """A click on the deck.gl map: the picked sample becomes the lens query."""
    chosen = deck_clicked(st.session_state.get("map_deck"))
    if chosen is not None and 0 <= chosen < len(frame):
        ui.set_query(path, split, chosen)


@st.cache_resource(show_spinner=False, max_entries=4)
def _points_layer(path: str, split: str, method: str, color_by: str, stamp: tuple):
    """Every point of the map as a deck.gl layer, kept (with its JSON) across reruns."""
    return points_layer(ui.map_data(path, split, method)[0], color_by)


query = ui.get_query(split)
neighbours = data.map_neighbours(query)
every_point = use_deck(len(frame)) and st.toggle(
    f"Draw all {len(frame):,} points (deck.gl)",
    key="map_every_point",
    help="Every image as a point (deck.gl), with hover and click; no lasso or box. It needs a "
    "browser with a GPU: in software WebGL it is slower than the sample (docs/performance.md, "
    "map_webgl). Off: a sample over a density, with lasso and box over every image.",
)
selected: list[int] = []
if every_point:
    layer = _points_layer(path, split, method, color_by, split_stamp(path, split))
    event = st.pydeck_chart(
        deck_chart(frame, layer, query=query, neighbours=neighbours),
        key="map_deck",
        on_select=_take_deck_click,
        height=620,
    )
    st.caption(f"{trust_note(meta, method)} {every_point_note(len(frame))}")
    clicked = deck_clicked(event)
    if clicked is not None and query != clicked:  # a selection set without the callback
        _take_deck_click()
        query = ui.get_query(split)
else:
    figure = map_figure(frame, color_by, query=query, neighbours=neighbours)
    # The callback runs before the rerun, so the clicked point's star shows at once.
    event = st.plotly_chart(
        figure,
        key="map",
        on_select=lambda: _take_click(st.session_state.get("map")),
        selection_mode=("points", "box", "lasso"),
        config={"displaylogo": False, "scrollZoom": True},
    )
    note = sample_note(len(frame))
    st.caption(trust_note(meta, method) + (f" {note}" if note else ""))
    selected = selected_indices(event, frame)
    if len(selected) == 1 and query != selected[0]:  # a selection set without the callback
        _take_click(event)
        query = selected[0]

if query is not None:
    cols = st.columns([3, 1])
    cols[0].success(
        f"Sample #{query} is the query lens's query (the ★ on the map; rings mark its "
        "10 nearest neighbours in the embedding space)."
    )
    cols[1].page_link(
        "app_pages/lens.py", label="Open it in the query lens", icon=":material/manage_search:"
    )

if len(selected) > 1:
    st.subheader(f"{len(selected)} selected images")
    shown = selected[:MAX_TABLE_ROWS]
    if len(selected) > MAX_TABLE_ROWS:
        st.caption(f"Showing the first {MAX_TABLE_ROWS}.")
    thumbs = ui.thumbnails(path, split)
    table = selection_table(frame, shown, thumbs.many(shown))
    columns = {
        "image": st.column_config.ImageColumn("image", width="small"),
        "AP@R": st.column_config.NumberColumn("AP@R", format="%.2f"),
        "consistency": st.column_config.NumberColumn("consistency", format="%.2f"),
    }
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config=columns,
        row_height=48,
        placeholder=MISSING,
    )
    if "AP@R" in table:
        st.caption(f"Mean AP@R of the selection: {table['AP@R'].mean():.3f}")
    if "flipped" in table:
        st.caption(
            f"Flipped labels in the selection: {int(table['flipped'].sum())} of {len(table)}"
        )
elif not selected and query is None:
    st.info("Click a point to inspect its ranked list, or lasso a group of points.")
