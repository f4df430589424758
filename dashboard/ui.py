"""What every page shares: the runs folder, cached loaders, the current run and split, the help
captions. Loading logic lives in ``dmlviz.views.data``; this module only adds Streamlit caching
(keyed by run path + file modification times) and session state."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dmlviz.runs import CONFIG, METRICS, STUDY_FILES, Run, RunError, embeddings_file, replay_files
from dmlviz.views import access
from dmlviz.views import data as views_data
from dmlviz.views.consistency import noisiest_run
from dmlviz.views.lens import LENS_CSS
from dmlviz.views.replay import ReplayData, load_replay
from dmlviz.views.runs import run_label
from dmlviz.views.style import loss_name
from dmlviz.views.thumbs import ThumbnailCache

FAVICON = str(Path(__file__).with_name("favicon.svg"))  # sent inline, as a data URI
TOKEN_KEY = "_token_ok"  # set once this browser session brought the dashboard's token
RUN_KEY = "run"  # path of the current run (sidebar)
SPLIT_KEY = "split"  # split of the current run (sidebar)
QUERY_KEY = "lens_query"  # {"run": path, "split": split, "index": i}: the query lens's query


def runs_dir() -> Path:
    """The folder of runs: ``--runs DIR`` after the script's ``--``, else ``$DMLVIZ_RUNS``, else
    ``runs``."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--runs" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--runs="):
            return Path(arg.split("=", 1)[1])
    return Path(os.environ.get("DMLVIZ_RUNS", "runs"))


def require_token() -> None:
    """Stop the script with a refusal page unless this session brought the dashboard's token
    (``dmlviz.views.access``) in the URL; the URL keeps it, so a reload still works."""
    expected = access.expected_token()
    if expected is None:
        return
    given = st.query_params.get(access.TOKEN_PARAM)
    if st.session_state.get(TOKEN_KEY) or access.token_matches(given, expected):
        st.session_state[TOKEN_KEY] = True
        if given != expected:  # a page change dropped it from the URL
            st.query_params[access.TOKEN_PARAM] = expected
        return
    st.set_page_config(page_title="dmlviz: token required", page_icon=FAVICON)
    st.title("Token required")
    st.error(access.REFUSAL, icon=":material/lock:")
    st.stop()


# -- cached loaders -----------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=4)
def _runs(root: str, stamp: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    return views_data.list_runs(root)


def all_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, broken)`` of the runs folder, re-read when any run's summary files change."""
    root = runs_dir()
    return _runs(str(root), views_data.runs_stamp(root))


@st.cache_resource(show_spinner=False, max_entries=32)
def _run(path: str, stamp: tuple) -> Run:
    return Run.load(path)


def load_run(path: str) -> Run:
    """The run at ``path`` (its config re-read when its config changes)."""
    return _run(path, views_data.file_stamp(path, CONFIG))


@st.cache_resource(show_spinner=False, max_entries=16)
def _dataset(path: str, split: str, stamp: tuple) -> tuple[Any, str | None]:
    try:
        return load_run(path).dataset(split), None
    except Exception as error:  # any dataset problem: the pages work on without images
        return None, f"{type(error).__name__}: {error}"


def dataset(path: str, split: str) -> tuple[Any, str | None]:
    """``(dataset, None)`` of a run's split for class names and thumbnails, or ``(None, reason)``
    when its data cannot be loaded here (e.g. the images are on another machine)."""
    return _dataset(path, split, views_data.file_stamp(path, CONFIG))


@st.cache_resource(show_spinner=False, max_entries=16)
def _thumbs(path: str, split: str, stamp: tuple) -> ThumbnailCache:
    return ThumbnailCache(dataset(path, split)[0])


def thumbnails(path: str, split: str) -> ThumbnailCache:
    """The thumbnail cache of a run's split (placeholders when its data cannot be loaded)."""
    return _thumbs(path, split, views_data.file_stamp(path, CONFIG))


def class_names(path: str, split: str) -> list[str] | None:
    """Class names of a run's split (None without its dataset)."""
    return views_data.class_names_or_none(dataset(path, split)[0])


@st.cache_resource(show_spinner=False, max_entries=16)
def _split(path: str, split: str, stamp: tuple) -> views_data.SplitData:
    return views_data.load_split(load_run(path), split)


def split_data(path: str, split: str) -> views_data.SplitData:
    """Labels, evaluation and consistency of a run's split (shared read-only across sessions)."""
    return _split(path, split, views_data.split_stamp(path, split))


@st.cache_resource(show_spinner=False, max_entries=8)
def _embeddings(path: str, split: str, stamp: tuple):
    return load_run(path).embeddings(split)


def embeddings(path: str, split: str):
    """``(embeddings, clean labels)`` of a run's split (shared read-only across sessions)."""
    return _embeddings(path, split, views_data.file_stamp(path, embeddings_file(split)))


@st.cache_data(show_spinner=False, max_entries=16)
def _map(path: str, split: str, method: str, stamp: tuple):
    names = class_names(path, split)
    return views_data.load_map(load_run(path), split, method, split_data(path, split), names)


def map_data(path: str, split: str, method: str):
    """``(map frame, projection meta)`` of a run's split and method."""
    return _map(path, split, method, views_data.split_stamp(path, split))


@st.cache_resource(show_spinner=False, max_entries=8)
def _replay(path: str, stamp: tuple) -> ReplayData | None:
    return load_replay(load_run(path))


def replay(path: str) -> ReplayData | None:
    """A run's training replay (``dmlviz.views.replay.load_replay``), re-read when a snapshot,
    its metrics or its layout change."""
    return _replay(path, views_data.file_stamp(path, *replay_files()))


@st.cache_data(show_spinner=False, max_entries=32)
def _training_metrics(path: str, stamp: tuple) -> pd.DataFrame:
    return load_run(path).metrics()


def training_metrics(path: str) -> pd.DataFrame:
    """A run's ``metrics.jsonl`` as a frame."""
    return _training_metrics(path, views_data.file_stamp(path, METRICS))


@st.cache_data(show_spinner=False, max_entries=16)
def _study(folder: str, stamp: tuple) -> tuple[pd.DataFrame, dict[str, float]]:
    from dmlviz.views.tuning import param_importances, study_table

    return study_table(folder), param_importances(folder)


def tuning_study(folder: str | Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """``(trials, importances)`` of the tuning study in ``folder`` (``dmlviz.views.tuning.study_table``
    and ``param_importances``), re-read when the study changes."""
    return _study(str(folder), views_data.file_stamp(folder, *STUDY_FILES))


# -- shared state and widgets ---------------------------------------------------------------------


def runs_or_stop() -> pd.DataFrame:
    """The readable runs; stops the page (after the app's getting-started text) when there are none."""
    runs, _ = all_runs()
    if runs.empty:
        st.stop()
    return runs


def current_run() -> tuple[str, dict[str, Any]]:
    """``(path, summary row)`` of the run chosen in the sidebar."""
    runs = runs_or_stop()
    path = st.session_state.get(RUN_KEY) or runs["path"].iloc[0]
    rows = runs[runs["path"] == path]
    row = rows.iloc[0] if len(rows) else runs.iloc[0]
    return str(row["path"]), row.to_dict()


def _splits(path: str) -> list[str]:
    try:
        return views_data.embedded_splits(load_run(path))
    except RunError:
        return []


def current_split(path: str) -> str | None:
    """The split chosen in the sidebar, else the run's default (test, else query, else the first
    embedded one); None when the run has no embeddings."""
    splits = _splits(path)
    split = st.session_state.get(SPLIT_KEY)
    if split in splits:
        return split
    preferred = [s for s in ("test", "query") if s in splits]
    return preferred[0] if preferred else (splits[0] if splits else None)


def sidebar(runs: pd.DataFrame) -> None:
    """The run and split pickers shared by every page (first run and the test split preselected)."""
    paths = list(runs["path"])
    labels = {row["path"]: run_label(row) for row in runs.to_dict("records")}
    if st.session_state.get(RUN_KEY) not in paths:
        st.session_state[RUN_KEY] = paths[0]
    st.sidebar.selectbox(
        "Run",
        paths,
        key=RUN_KEY,
        format_func=lambda p: labels.get(p, p),
        help="The run every page shows. Runs are folders below the runs directory.",
    )
    splits = _splits(st.session_state[RUN_KEY])
    if not splits:
        st.session_state[SPLIT_KEY] = None
        st.sidebar.caption("This run has no embeddings yet.")
        return
    st.session_state[SPLIT_KEY] = current_split(st.session_state[RUN_KEY])
    st.sidebar.radio(
        "Split",
        splits,
        key=SPLIT_KEY,
        horizontal=True,
        help="test: images never seen in training (retrieval quality). train: the samples the "
        "loss saw, with their noisy labels (where label noise shows).",
    )


def set_query(path: str, split: str, index: int) -> None:
    """Make sample ``index`` of ``split`` the query lens's query."""
    st.session_state[QUERY_KEY] = {"run": path, "split": split, "index": int(index)}


def get_query(split: str) -> int | None:
    """The lens query's sample index when it belongs to ``split``, else None."""
    query = st.session_state.get(QUERY_KEY)
    if isinstance(query, dict) and query.get("split") == split:
        return int(query["index"])
    return None


def show_error(error: Exception) -> None:
    """A run problem as a red box with its message (never a traceback)."""
    st.error(f"{error}", icon=":material/error:")


def lens_css() -> None:
    """The CSS of thumbnail strips (cards with coloured frames)."""
    st.html(LENS_CSS)


def need_split() -> tuple[str, dict[str, Any], str]:
    """``(run path, summary row, split)``; stops the page with a hint when the run has no
    embeddings."""
    path, row = current_run()
    split = current_split(path)
    if split is None:
        st.info(
            f"This run has no embeddings yet: run `dmlviz embed {path}` (then `dmlviz evaluate` "
            f"and `dmlviz project`)."
        )
        st.stop()
    return path, row, split


def open_in_lens(path: str, split: str, index: int) -> None:
    """A widget callback: make ``index`` of ``split`` the lens query, switch the sidebar to that
    split, and go to the query lens on the rerun (``follow_to_lens``)."""
    set_query(path, split, index)
    st.session_state[SPLIT_KEY] = split
    st.session_state["_goto_lens"] = True


def follow_to_lens() -> None:
    """Switch to the query lens when a callback asked for it (``open_in_lens``)."""
    if st.session_state.pop("_goto_lens", False):
        st.switch_page("app_pages/lens.py")


def _choose_run(path: str) -> None:
    st.session_state[RUN_KEY] = path


def offer_noisy_run(row: dict[str, Any], empty: str, key: str) -> None:
    """Say that the current run (summary ``row``) trained on clean labels, so ``empty`` (what stays
    empty on this page), and offer one click to the same loss's noisiest run (the noise lab when
    there is none). ``key`` names the button."""
    other = noisiest_run(all_runs()[0], row)
    loss = loss_name(str(row.get("loss")))
    with st.container(border=True):
        st.markdown(
            f":material/info: **This run has no label noise**: none of its training labels was "
            f"flipped, so {empty}."
        )
        if other is None:
            st.caption(
                f"No {loss} run here trained with flipped labels: start one in the noise lab."
            )
            st.page_link("app_pages/noise_lab.py", label="Noise lab", icon=":material/experiment:")
            return
        st.button(
            f"Show {run_label(other)}",
            key=key,
            type="primary",
            icon=":material/swap_horiz:",
            on_click=_choose_run,
            args=(str(other["path"]),),
            help=f"The {loss} run with the most label noise: it becomes every page's run (the "
            "sidebar's too).",
        )
