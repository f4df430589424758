"""Noise lab: start a label-noise experiment, watch it train, compare the losses when it is done.

The experiment runs as its own process (``dmlviz sweep``, started by ``dmlviz.experiments.launcher``) in a folder
below the runs folder. This page only reads that folder, so closing the browser or restarting the
dashboard loses nothing: reopening the page shows where each experiment stands.
"""

import os

import streamlit as st
import ui

from dmlviz.experiments import launcher as lab
from dmlviz.experiments.estimate import estimate_seconds
from dmlviz.experiments.spec import EXECUTORS
from dmlviz.experiments.state import experiment_state
from dmlviz.presets import KINDS as PRESET_KINDS
from dmlviz.registry import LOSSES
from dmlviz.registry.datasets import DATASETS
from dmlviz.registry.settings import NOISE_KINDS
from dmlviz.views import access
from dmlviz.views import lab as views
from dmlviz.views.style import MISSING, loss_name

FOLDER_KEY = "lab_folder"  # the experiment shown
SEEN_KEY = "_lab_seen"  # (folder, views.watch_key) at the last look, to notice changes
REFRESH_S = 2.0

st.title("Noise lab")
st.caption(
    "Train several losses on the same images with a share of the training labels flipped, and "
    "see which one keeps retrieving well and which finds the flipped labels. The experiment runs "
    "in the background (the same code as `dmlviz sweep`): you can use the other pages, close the "
    "browser or restart the dashboard meanwhile."
)
# The epochs field's default comes from the training code (torch, torchvision, scikit-learn:
# seconds on the first visit after the dashboard starts), so it loads after the title is drawn.
with st.spinner("Loading the training code..."):
    from dmlviz.train import default_config

runs_dir = ui.runs_dir()
experiments = [str(folder) for folder in lab.list_experiments(runs_dir)]
states = {folder: experiment_state(folder) for folder in experiments}

# -- the form ---------------------------------------------------------------------------------------


def dataset_fields() -> tuple[str, str]:
    """The dataset and the folder it is read from (none for a bundled one)."""
    left, right = st.columns([1, 2])
    dataset = left.selectbox(
        "Dataset",
        DATASETS,
        key="lab_dataset",
        help="digits comes with scikit-learn (1797 8x8 images, 10 classes, seconds per run); "
        "the others are read from a folder on this machine.",
    )
    bundled = dataset in views.NEEDS_NO_ROOT
    root = right.text_input(
        "Dataset folder",
        key="lab_root",
        disabled=bundled,
        placeholder=f"not needed for {dataset}" if bundled else f"folder holding {dataset}",
        help="Where the dataset's files are on the machine running the dashboard.",
    )
    return dataset, root


def loss_fields() -> tuple[list[str], str]:
    """The losses compared and the kind of label noise."""
    left, right = st.columns([2, 1])
    losses = left.multiselect(
        "Losses",
        list(LOSSES),
        default=list(views.DEFAULT_LOSSES),
        key="lab_losses",
        format_func=loss_name,
        help="Contextual and Ranked List Loss are the losses studied here; Multi-Similarity, "
        "Contrastive and Triplet are baselines.",
    )
    noise_kind = right.selectbox(
        "Noise kind",
        NOISE_KINDS,
        key="lab_noise_kind",
        help="symmetric: a flipped label becomes any other class; pair: always the next class; "
        "nearest_class: the most similar class (the hardest); small_cluster: the rate is the "
        "share of images whose whole class is dissolved and scattered in groups of 1-5 into the "
        "other classes (PRISM, CVPR 2021).",
    )
    return losses, noise_kind


def budget_fields(cells: list, dataset: str, losses: list[str]) -> tuple[str, str, int]:
    """The noise rates and seeds (as typed) and the epochs of every run, in three of ``cells``."""
    rates_text = cells[0].text_input(
        "Noise rates",
        views.DEFAULT_RATES,
        key="lab_rates",
        help="Shares of training labels to flip, e.g. 0, 0.2, 0.4 (or 0%, 20%, 40%).",
    )
    seeds_text = cells[1].text_input(
        "Seeds",
        views.DEFAULT_SEEDS,
        key="lab_seeds",
        help="One run per seed; two or more show whether a difference is more than chance.",
    )
    default_epochs = int(default_config(dataset, losses[0] if losses else "contextual")["epochs"])
    epochs = cells[2].number_input(
        "Epochs",
        min_value=1,
        max_value=10_000,
        value=default_epochs,
        key=f"lab_epochs_{dataset}",
        help=f"The training budget of every run ({default_epochs} is {dataset}'s default).",
    )
    return rates_text, seeds_text, int(epochs)


def executor_fields() -> tuple[str, str]:
    """Where the runs train, and the Ray cluster's address when on one."""
    left, right = st.columns([1, 2])
    executor = left.selectbox(
        "Train on",
        EXECUTORS,
        key="lab_executor",
        format_func=views.EXECUTOR_LABELS.get,
        help="A Ray cluster trains each run as a Ray task with the CPUs and GPU it needs; the "
        "runs folder must then be on a filesystem every node mounts at the same path "
        "(docs/cluster.md). Needs `pip install 'dmlviz[cluster]'`.",
    )
    address = right.text_input(
        "Ray address",
        key="lab_address",
        disabled=executor == "local",
        placeholder="HEAD:6379, or empty for a local Ray on this machine",
        help="The head node of the cluster (`ray start --head --port=6379` prints it).",
    )
    return executor, address


def output_fields(dataset: str) -> tuple[str, bool, str]:
    """The presets the losses start from, whether UMAP maps are drawn, the experiment's name."""
    left, middle, right = st.columns([1, 1, 2])
    presets = middle.selectbox(
        "Hyperparameters",
        PRESET_KINDS,
        key="lab_presets",
        format_func=views.PRESET_LABELS.get,
        help="tuned: each loss's settings found by `dmlviz tune` with the same budget for "
        "every loss (the paper defaults where no search ran); paper: the papers' own settings. "
        "Run both to see whether a loss is weak or only mistuned.",
    )
    umap = left.checkbox(
        "UMAP maps",
        True,
        key="lab_umap",
        help="PCA maps are always made; UMAP draws clearer clusters but compiles once per "
        "experiment (about 10-20 s).",
    )
    name = right.text_input(
        "Experiment name (optional)",
        key="lab_name",
        placeholder=f"lab-{dataset}-<date>-<time>",
        help="The experiment's folder below the runs folder.",
    )
    return presets, umap, name


def start_button(spec, problems: list[str], dataset: str, root: str) -> None:
    """The time estimate or the form's problems, and the button that starts the experiment."""
    if not problems:
        try:
            with st.spinner("Timing a few training steps on this machine..."):
                seconds = estimate_seconds(spec)
        except Exception as error:  # the dataset cannot be read from that folder: say why
            problems.append(f"cannot read {dataset} from {root}: {error}")
        else:
            st.info(views.estimate_text(seconds, spec), icon=":material/timer:")
    if problems:
        st.error(views.problems_markdown(problems), icon=":material/error:")
    if st.button(
        "Start",
        key="lab_start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=bool(problems),
    ):
        try:
            experiment = lab.start_experiment(spec, runs_dir)
        except lab.FolderBusyError as error:
            st.error(f"{error}", icon=":material/lock:")
        except ValueError as error:
            st.error(f"{error}", icon=":material/error:")
        else:
            st.session_state[FOLDER_KEY] = str(experiment.folder)
            st.rerun()


def new_experiment() -> None:
    """The form that starts an experiment: reads the dataset folder typed in it, starts a process."""
    with st.expander(":material/add_circle: New experiment", expanded=not experiments):
        dataset, root = dataset_fields()
        losses, noise_kind = loss_fields()
        cells = st.columns(4)
        rates_text, seeds_text, epochs = budget_fields(cells, dataset, losses)
        executor, address = executor_fields()
        jobs = cells[3].number_input(  # drawn after the executor, which disables it
            "Runs in parallel",
            min_value=1,
            max_value=max(1, os.cpu_count() or 1),
            value=1,
            key="lab_jobs",
            disabled=executor == "ray",
            help="Each parallel run gets a share of the CPU cores (on Ray, the cluster decides).",
        )
        fractions_text = st.text_input(
            "Train data kept",
            "1",
            key="lab_train_fractions",
            help="Shares of each training class's images every run trains on, e.g. 1, 0.5, 0.25 "
            "(or 100%, 50%, 25%): the smaller shares lie inside the larger ones, the test split "
            "is untouched. Charts against it on the Runs page show how much each loss overfits.",
        )
        presets, umap, name = output_fields(dataset)
        spec, problems = views.form_spec(
            dataset, losses, rates_text, seeds_text, noise_kind, epochs, umap, int(jobs), root,
            name, runs_dir, presets, executor, address, fractions_text,
        )  # fmt: skip
        start_button(spec, problems, dataset, root)


if access.jobs_allowed():
    new_experiment()
else:
    st.info(access.READ_ONLY, icon=":material/lock:")


# -- the experiment ---------------------------------------------------------------------------------

st.subheader("Experiment")
if not experiments:
    hint = ": fill in the form above and press Start" if access.jobs_allowed() else ""
    st.info(f"No experiment in `{runs_dir}` yet{hint}.")
    st.stop()
if st.session_state.get(FOLDER_KEY) not in experiments:
    st.session_state[FOLDER_KEY] = experiments[0]
folder = st.selectbox(
    "Experiment",
    experiments,
    key=FOLDER_KEY,
    format_func=lambda f: views.experiment_label(states[f]),
    label_visibility="collapsed",
)
state = states[folder]
st.caption(f"{views.spec_caption(state['spec'])} · `{folder}`")


def live_view(folder: str) -> None:
    """Progress and controls; re-drawn every few seconds while the experiment runs."""
    state = experiment_state(folder)
    st.markdown(f"{views.phase_badge(state)} {views.status_line(state)}")
    st.progress(views.overall_fraction(state))
    small = {"width": "small"}
    st.dataframe(
        views.progress_table(state),
        hide_index=True,
        width="stretch",
        column_config={
            "Noise rate": st.column_config.NumberColumn(format="%.0f %%", **small),
            "Seed": st.column_config.NumberColumn(**small),
            "Epoch": st.column_config.TextColumn(**small),
            "Progress": st.column_config.ProgressColumn(
                min_value=0, max_value=100, format="%.0f %%", **small
            ),
            "Training loss": st.column_config.NumberColumn(
                format="%.4f", help=f"Of the last epoch. {MISSING}: no epoch finished yet."
            ),
            "Images/s": st.column_config.NumberColumn(
                format="%.0f", help=f"{MISSING}: no epoch finished yet.", **small
            ),
            "Time left": st.column_config.TextColumn(**small),
            views.MAP_TITLE: st.column_config.NumberColumn(
                format="%.3f",
                help=f"Test {views.MAP_TITLE}. {MISSING}: the run is not evaluated yet.",
                **small,
            ),
        },
        placeholder=MISSING,
    )
    if state["failed"]:
        st.error(
            f"The experiment stopped with an error: {state['error'] or 'see the log below'}",
            icon=":material/error:",
        )
        st.code(state["log_tail"] or "(empty log)", language=None)
    jobs = access.jobs_allowed()  # read-only: the state above, no control
    if state["alive"] and jobs:
        left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
        runs = views.cancellable_runs(state)
        if runs:
            run = left.selectbox("Run to cancel", runs, key="lab_cancel_pick")
            if middle.button("Cancel this run", key="lab_cancel_run", icon=":material/close:"):
                lab.cancel_experiment(folder, run=run)
                st.toast(f"{run} stops at its next epoch (or is skipped); the others go on.")
        if right.button("Cancel experiment", key="lab_cancel_all", icon=":material/stop:"):
            with st.spinner("Stopping the experiment's processes..."):
                lab.cancel_experiment(folder)
            st.rerun()
    elif views.can_resume(state) and jobs:
        st.caption(
            "Finished runs are kept; cancelled or interrupted runs resume from their last "
            "saved epoch, queued ones start."
        )
        if st.button("Resume", key="lab_resume", type="primary", icon=":material/replay:"):
            try:
                lab.resume_experiment(folder)
            except lab.FolderBusyError as error:
                st.error(f"{error}", icon=":material/lock:")
            else:
                st.rerun()
    # Last, so a click handled above is never lost to this rerun: when the process starts or
    # stops, the phase moves on or a run finishes, re-run the whole app (sidebar run list,
    # refresh timer, comparison).
    seen = st.session_state.get(SEEN_KEY)
    st.session_state[SEEN_KEY] = (folder, views.watch_key(state))
    if seen is not None and seen != st.session_state[SEEN_KEY] and seen[0] == folder:
        st.rerun()


st.fragment(run_every=REFRESH_S if state["alive"] else None)(live_view)(folder)

# -- the comparison ---------------------------------------------------------------------------------

st.subheader("Comparison")
if state["alive"]:
    st.caption(
        "Shown when the experiment is done. Each finished run joins the sidebar's run list at "
        "once: open it in the Embedding map, Query lens or Neighbour consistency pages."
    )
    st.stop()
runs, _ = ui.all_runs()
frame = views.experiment_runs(runs, folder)
if not state["done"] or frame.empty:
    st.info("No finished run in this experiment yet.")
    st.stop()
with st.container(border=True):
    st.markdown(views.comparison_text(frame))
figures = views.comparison_figures(frame)
for column, (index, figure) in zip(st.columns(len(figures)), enumerate(figures), strict=True):
    column.plotly_chart(figure, key=f"lab_compare_{index}")
st.caption(
    "Mean over seeds per loss and noise rate, the bar one standard deviation. Every run of the "
    "experiment is in the sidebar's run list for the other pages."
)
