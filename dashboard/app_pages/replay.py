"""Replay: watch training happen. The aligned map of the train probe at one epoch (flipped images
with their trails), the curves of what each snapshot measures, and a query's ranked list at that
epoch next to the last one; two runs side by side on one slider."""

import streamlit as st
import ui

from dmlviz.project import project_replay
from dmlviz.registry.metrics import metric
from dmlviz.views.lens import ranked_list, ranked_strip_html
from dmlviz.views.partners import partners, runs_with
from dmlviz.views.replay import all_epochs, frame_at, replay_curves, replay_map, snapshot_ranking
from dmlviz.views.runs import run_label
from dmlviz.views.style import percent, score

st.title("Training replay")
st.caption(
    "Early in training a network learns what most images share and keeps an image with a "
    "**flipped** label near its true class; later it may *memorise* the wrong label and drag the "
    "image to the class it was told. Orange crosses are flipped images, their lines the way they "
    "came since the last snapshots. A loss resists label noise when this happens late or never."
)
path, row = ui.current_run()
runs, _ = ui.all_runs()


def _has_replay(run) -> bool:
    return bool(run.replay_epochs())


with_replay = runs_with(runs, ui.load_run, _has_replay)
if path not in {r["path"] for r in with_replay}:
    st.info(
        f"**{run_label(row)}** has no replay snapshots (trained before replay existed, or with "
        "`--replay-every 0`). Train a run with replay, e.g. `dmlviz train --dataset digits --loss "
        "rll --noise 0.4 --out runs/rll-n40`, or pick one of the runs below in the sidebar."
    )
    if with_replay:
        st.dataframe(
            [{"run": run_label(r), "path": r["path"]} for r in with_replay], hide_index=True
        )
    st.stop()

others = partners(row, runs, ui.load_run, _has_replay)
partner = st.selectbox(
    "Side by side with",
    others.options,
    key="replay_partner",
    format_func=lambda p: "no second run" if p is None else others.label(p),
    help="A second run on the same slider: preselected, another loss at the same noise rate.",
)
shown = [(path, row)] + ([(partner, others.rows[partner])] if partner else [])
replays = []
for run_path, run_row in shown:
    data = ui.replay(run_path)
    if data is None:
        continue
    if data.coords is None:
        with st.spinner(f"Aligning the replay map of {run_label(run_row)} (once per run)..."):
            project_replay(ui.load_run(run_path))
        data = ui.replay(run_path)
    replays.append((run_path, run_row, data))

epochs = all_epochs([data for _, _, data in replays])
controls = st.columns([4, 1])
epoch = controls[0].select_slider("Epoch", options=epochs, value=epochs[-1], key="replay_epoch")
trail = controls[1].number_input(
    "Trail (snapshots)",
    0,
    10,
    1,
    key="replay_trail",
    help="How many earlier snapshots each flipped image's line goes back through.",
)

columns = st.columns(len(replays))
for column, (run_path, run_row, data) in zip(columns, replays, strict=True):
    with column:
        names = ui.class_names(run_path, "train")
        i = frame_at(data.epochs, epoch)
        values = data.metrics.iloc[i]
        st.markdown(f"**{run_label(run_row)}** · snapshot of epoch {data.epochs[i]}")
        cells = st.columns(3)
        cells[0].metric(f"test {metric('map@r').short}", score(values["map@r"]))
        cells[1].metric(metric("detector_auroc").short, score(values["detector_auroc"]))
        cells[2].metric(
            "memorised",
            percent(values["memorised"]),
            help="Share of flipped images whose nearest neighbours mostly carry the wrong label "
            "they were trained with.",
        )
        st.plotly_chart(replay_map(data, epoch, int(trail), names), key=f"replay_map_{run_path}")
        if data.trust:
            trust = data.trust[frame_at(data.layout_epochs, epoch)]
            if trust is not None:
                st.caption(f"Trustworthiness of this frame: {trust:.3f} (1 = every map "
                           "neighbour is a true neighbour).")  # fmt: skip
        for problem in data.problems:
            st.caption(problem)

st.subheader("Against epoch")
st.plotly_chart(
    replay_curves([(run_label(r), r.get("loss"), d) for _, r, d in replays], epoch),
    key="replay_curves",
)

st.subheader("A query at this epoch and at the end")
first = replays[0][2]
n = len(first.probe["test_labels"])
if n < 2:
    st.info("This run's replay has no test images to rank.")
    st.stop()
query = int(st.number_input(f"Test image (0 to {n - 1})", 0, n - 1, 0, key="replay_query"))
k = 8
ui.lens_css()
for run_path, run_row, data in replays:
    run = ui.load_run(run_path)
    names = ui.class_names(run_path, "test")
    thumbs = ui.thumbnails(run_path, "test")
    test_index = data.probe["test_index"]
    st.markdown(f"**{run_label(run_row)}**: test image #{int(test_index[query])}")
    pair = st.columns(2)
    for column, at in zip(pair, (epoch, data.epochs[-1]), strict=True):
        ranking = snapshot_ranking(data, run, at, query, k)
        table = ranked_list(ranking, data.probe["test_labels"], names, k=k)
        table["index"] = test_index[table["index"].to_numpy()]
        column.caption(f"epoch {data.epochs[frame_at(data.epochs, at)]}: "
                       f"{int(table['correct'].sum())} / {len(table)} correct")  # fmt: skip
        column.html(ranked_strip_html(table, thumbs.many(table["index"])))
