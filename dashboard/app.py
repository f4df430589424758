"""dmlviz dashboard: see why retrieval fails. Start it with ``dmlviz dashboard [RUNS_DIR]``.

Declares the pages (``st.navigation``) and the sidebar's run and split pickers; each page is a thin
view over ``dmlviz.views``. Page files live in ``app_pages/``: a folder named ``pages/`` would
switch Streamlit to its legacy multipage mode for a first visit to a page's URL.
"""

import streamlit as st
import ui

# (section, file, title, icon); the first page is the default one, at "/".
PAGES = (
    ("Experiments", "runs", "Runs", "table_chart"),
    ("Experiments", "noise_lab", "Noise lab", "experiment"),
    ("Experiments", "consistency", "Neighbour consistency", "hub"),
    ("Inspect a run", "map", "Embedding map", "scatter_plot"),
    ("Inspect a run", "lens", "Query lens", "manage_search"),
    ("Inspect a run", "queries", "Worst queries", "trending_down"),
    ("Inspect a run", "replay", "Replay", "movie"),
    ("Learn", "anatomy", "Loss anatomy", "science"),
)

ui.require_token()  # before any page: a dashboard served with a token shows nothing without it
# A file, not a :material/...: icon: Streamlit fetches those favicons from fonts.gstatic.com (the
# icons in the pages come from the font it bundles), and the dashboard works offline.
st.set_page_config(page_title="dmlviz", page_icon=ui.FAVICON, layout="wide")

runs, broken = ui.all_runs()
if runs.empty:  # nothing to inspect yet: how to make runs, and the lab that makes them
    welcome = st.Page("app_pages/welcome.py", title="Get started", icon=":material/rocket_launch:")
    lab = st.Page(
        "app_pages/noise_lab.py",
        title="Noise lab",
        icon=":material/experiment:",
        url_path="noise_lab",
    )
    page = st.navigation([welcome, lab])
else:
    sections: dict[str, list] = {}
    for i, (section, name, title, icon) in enumerate(PAGES):
        sections.setdefault(section, []).append(
            st.Page(
                f"app_pages/{name}.py",
                title=title,
                icon=f":material/{icon}:",
                url_path=None if i == 0 else name,
                default=i == 0,
            )
        )
    page = st.navigation(sections)
    st.sidebar.markdown("### :material/manage_search: dmlviz")
    ui.sidebar(runs)
    st.sidebar.caption(f"{len(runs)} run(s) in `{ui.runs_dir()}`")
    if len(broken):
        st.sidebar.caption(f":material/warning: {len(broken)} broken run folder(s): see Runs.")
    if st.sidebar.button("Reload runs", help="Re-read the runs folder and every cached file."):
        st.cache_data.clear()
        st.cache_resource.clear()
        st.rerun()
page.run()
