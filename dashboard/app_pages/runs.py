"""Runs: every run in the folder, retrieval against label noise (and withheld train data) per
loss, training curves."""

import streamlit as st
import ui

from dmlviz.runs import RunError
from dmlviz.views.runs import (
    TABLE_COLUMNS,
    display_table,
    metric_vs_noise,
    run_label,
    shared_settings,
    training_curves,
)
from dmlviz.views.style import MISSING, loss_name
from dmlviz.views.tuning import (
    best_settings,
    best_trial,
    chosen_scores,
    find_studies,
    importance_figure,
    presets_display,
    study_info,
    study_label,
    trials_display,
    trials_figure,
)
from dmlviz.views.withheld import withheld_figures

st.title("Runs")
st.caption(
    "**MAP@R** (mean average precision at R) scores each test query's top R neighbours, R being "
    "the number of other images of its class, rewarding correct ones ranked early; **R@1** is the "
    "share of queries whose nearest neighbour has their class. Test images are never seen in "
    "training (nor their classes, under a class-disjoint protocol). **Detector AUROC**: how well disagreement with the nearest neighbours finds the "
    "training labels that were flipped (0.5 = chance)."
)

runs, broken = ui.all_runs()
if len(broken):
    with st.expander(
        f":material/warning: {len(broken)} run folder(s) cannot be read", expanded=True
    ):
        for row in broken.to_dict("records"):
            st.error(f"**{row['name']}**: {row['reason']}")

frame = runs
datasets = sorted(frame["dataset"].dropna().unique())
kinds = sorted(frame["noise_kind"].dropna().unique())
left, right = st.columns(2)
if len(datasets) > 1:
    chosen = left.selectbox("Dataset", datasets)
    frame = frame[frame["dataset"] == chosen]
if len(kinds) > 1:
    kind = right.selectbox("Noise kind", kinds)
    frame = frame[frame["noise_kind"] == kind]


def _choose_run() -> None:
    rows = st.session_state["runs_table"].selection.rows
    if rows:
        st.session_state[ui.RUN_KEY] = st.session_state["_runs_table_paths"][rows[0]]


shared = shared_settings(frame)
if shared:
    st.caption(
        "All runs below: "
        + ", ".join(f"{name.replace('_', ' ')} **{value}**" for name, value in shared.items())
    )
st.session_state["_runs_table_paths"] = list(frame["path"])
st.dataframe(
    display_table(frame),
    hide_index=True,
    width="stretch",
    key="runs_table",
    on_select=_choose_run,
    selection_mode="single-row",
    placeholder=MISSING,
    column_config={
        TABLE_COLUMNS["map@r"]: st.column_config.ProgressColumn(
            TABLE_COLUMNS["map@r"],
            format="%.3f",
            min_value=0,
            max_value=1,
            help=f"{MISSING}: the run is not evaluated yet (`dmlviz evaluate RUN`).",
        ),
        TABLE_COLUMNS["recall@1"]: st.column_config.NumberColumn(
            TABLE_COLUMNS["recall@1"],
            format="%.3f",
            help=f"{MISSING}: the run is not evaluated yet.",
        ),
        TABLE_COLUMNS["detector_auroc"]: st.column_config.NumberColumn(
            TABLE_COLUMNS["detector_auroc"],
            format="%.3f",
            help="How well disagreement with the nearest neighbours finds flipped training "
            f"labels (0.5 = chance). {MISSING}: the run has no flipped label to find (no label "
            "noise), or its train split is not evaluated yet.",
        ),
        "Noise rate": st.column_config.NumberColumn("Noise rate", format="%.0f %%"),
    },
)
st.caption(
    "Select a row to make it the current run of every page (also in the sidebar). "
    "**Hyperparameters** says where a run's loss settings come from: *tuned on validation* "
    "(`dmlviz tune`), the *paper defaults*, or *user settings*."
)

st.subheader("Retrieval against label noise")
st.caption(
    "One line per loss: the mean over seeds, the bar one standard deviation. A robust loss keeps "
    "its line flat as more training labels are flipped."
)
left, right = st.columns(2)
left.plotly_chart(metric_vs_noise(frame, "map@r"), key="map_vs_noise")
right.plotly_chart(metric_vs_noise(frame, "recall@1"), key="r1_vs_noise")
withheld = withheld_figures(frame)
if withheld:
    st.subheader("Against withheld training data")
    st.caption(
        "Each run trained on a share of each training class's images (the test split untouched). "
        "The last chart is train MAP@R minus test MAP@R: how much the model overfits what it saw."
    )
    for column, figure, key in zip(st.columns(3), withheld, ("map", "r1", "gap"), strict=True):
        column.plotly_chart(figure, key=f"{key}_vs_fraction")

path, row = ui.current_run()
st.subheader(f"Training curves: {run_label(row)}")
try:
    metrics = ui.training_metrics(path)
except RunError as error:  # a corrupt metrics.jsonl must not break the page
    ui.show_error(error)
else:
    if row.get("imported"):
        st.info("Imported embeddings: trained outside dmlviz, so there are no training curves.")
    elif metrics.empty:
        st.info("This run has not logged an epoch yet.")
    else:
        st.plotly_chart(training_curves(metrics, row.get("loss")), key="curves")
        config = ui.load_run(path).config
        settings = {
            "loss": loss_name(str(config.get("loss"))),
            "hyperparameters": config.get("preset_source") or "-",
            **(config.get("loss_kwargs") or {}),
        }
        st.caption(" · ".join(f"{k}: {v}" for k, v in settings.items()))

studies = find_studies(ui.runs_dir())
if studies:
    st.subheader("Hyperparameter tuning")
    st.caption(
        "Studies made by `dmlviz tune` in this folder. Each trial is scored by cross-validation "
        "on the train split: for each fold it trains on the rest of the train split and is "
        "scored by MAP@R on the fold (held-out train classes; under digits' samples protocol, "
        "held-out images of each digit). The test split is never read; a trial's value is the "
        "mean over its folds. Trials far below the median after a fold stop early. Trial 0 is "
        "the loss's paper defaults. At the end the paper defaults and the three best trials "
        "train again with fresh seeds (*With fresh seeds*: the mean over both sets of runs), and "
        "the best of those is the preset, so a lucky draw of seeds is not chosen."
    )
    infos = {str(folder): study_info(folder) for folder in studies}
    with st.expander(
        f":material/tune: {len(studies)} tuning stud{'y' if len(studies) == 1 else 'ies'}"
    ):
        study = st.selectbox(
            "Study", list(infos), key="tuning_study", format_func=lambda f: study_label(f, infos[f])
        )
        info = infos[study]
        try:
            trials, importances = ui.tuning_study(study)
        except Exception as error:  # a corrupt or foreign study.db must not break the page
            ui.show_error(error)
        else:
            best = best_trial(trials)
            cells = st.columns(3)
            stopped = int((trials["state"] == "pruned").sum()) if "state" in trials else 0
            cells[0].metric("Trials", len(trials), f"{stopped} stopped early", delta_color="off")
            if best is not None:
                score, paper = chosen_scores(trials, best)
                cells[1].metric("Chosen trial", int(best["trial"]))
                cells[2].metric(
                    "Its validation MAP@R",
                    f"{score:.4f}",
                    None if paper is None else f"{score - paper:+.4f} over the paper defaults",
                )
                st.caption(f"Chosen trial's settings: {best_settings(best)}")
            left, right = st.columns(2)
            left.plotly_chart(trials_figure(trials, info.get("loss")), key="tuning_trials")
            right.plotly_chart(
                importance_figure(importances, info.get("loss")), key="tuning_importance"
            )
            st.dataframe(
                trials_display(trials),
                hide_index=True,
                width="stretch",
                placeholder=MISSING,
                column_config={
                    "Validation MAP@R": st.column_config.NumberColumn(
                        help=f"Mean MAP@R over the trial's folds. {MISSING}: the trial stopped "
                        "early or failed before its first fold was scored."
                    ),
                    "With fresh seeds": st.column_config.NumberColumn(
                        help="Mean over the search's and the confirmation's runs. "
                        f"{MISSING}: the trial was not among those trained again."
                    ),
                },
            )

st.subheader("Presets")
shown_datasets = sorted({str(d) for d in frame["dataset"].dropna()})
st.caption(
    "The settings `dmlviz train`, `sweep` and the demo use for each loss unless told otherwise "
    "(`--preset paper` for the papers' own). *Tuned on validation* ones come from `dmlviz tune` "
    "with the same trial budget for every loss; their validation MAP@R is the mean over "
    "validation folds of the train split (search and fresh-seed runs), beside the paper "
    "defaults' on the same folds. The test split is never read."
)
st.dataframe(
    presets_display(shown_datasets or None),
    hide_index=True,
    width="stretch",
    placeholder=MISSING,
    column_config={
        "Validation MAP@R": st.column_config.NumberColumn(
            format="%.3f", help=f"{MISSING}: the paper defaults, not tuned here."
        ),
        "Paper defaults' validation MAP@R": st.column_config.NumberColumn(
            format="%.3f", help=f"{MISSING}: the paper defaults, not tuned here."
        ),
        "Trials": st.column_config.NumberColumn(help=f"{MISSING}: no search ran."),
        "Folds": st.column_config.NumberColumn(help=f"{MISSING}: no search ran."),
        "Tuned on": st.column_config.TextColumn(help=f"{MISSING}: no search ran."),
    },
)
