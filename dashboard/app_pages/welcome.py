"""Shown instead of the other pages while the runs folder holds no run."""

import streamlit as st
import ui

from dmlviz.views.runs import getting_started

st.title("dmlviz: see why retrieval fails")
st.markdown(
    "This dashboard explores metric-learning runs: the embedding map, each query's ranked list, "
    "which training labels look wrong, and how the contextual loss and the Ranked List Loss cope "
    "with label noise."
)
st.page_link(
    "app_pages/noise_lab.py",
    label="Or start an experiment from this dashboard: open the Noise lab",
    icon=":material/experiment:",
)
st.markdown(getting_started(ui.runs_dir()))
_, broken = ui.all_runs()
if len(broken):
    st.warning(f"{len(broken)} folder(s) look like runs but cannot be opened:")
    st.dataframe(broken, hide_index=True, width="stretch")
