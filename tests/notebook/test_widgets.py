"""dmlviz.notebook's widgets without a browser: a click, a picker, a slider or an epoch moves the
state the way a student's gesture would, and each view's output carries a static picture."""

import numpy as np
import plotly.io as pio
import pytest
from plotly.callbacks import Points

from dmlviz import notebook
from dmlviz.evaluate import evaluate_run
from dmlviz.runs import import_embeddings
from dmlviz.views.anatomy import CONTEXTUAL_STEPS


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_run):
    """An imported run of 4 noisy blobs of 10 points, evaluated (no images, no map yet)."""
    run = make_run(tmp_path_factory.mktemp("imported") / "run", n=40, classes=4, dim=8,
                   imported=True)  # fmt: skip
    evaluate_run(run)
    return run


def _map_trace(lens):
    lens_traces = ("lens query", "its top-K neighbours")
    return next(t for t in lens.figure.data if t.name not in lens_traces and len(t.customdata) > 3)


def test_a_click_on_the_map_makes_the_lens_query(run):
    lens = notebook.lens(run)
    assert lens.query == lens.worst[0]  # the worst query first
    trace = _map_trace(lens)
    clicked = int(trace.customdata[2][0])
    lens._clicked(trace, Points(point_inds=[2]), None)
    assert lens.query == clicked and lens.number.value == clicked
    assert f"query #{clicked}</b>" in lens.panel.value
    star = next(t for t in lens.figure.data if t.name == "lens query")
    assert star.x[0] == pytest.approx(lens.frame["x"].iat[clicked])
    rings = next(t for t in lens.figure.data if t.name == "its top-K neighbours")
    neighbours, _ = run.neighbours("test")
    np.testing.assert_array_equal(np.asarray(rings.customdata)[:, 0], neighbours[clicked, : lens.k])
    ticks = lens.panel.value.count("✓") + lens.panel.value.count("✗")
    assert ticks == lens.k  # every neighbour judged by its clean label


def test_the_worst_queries_picker_and_the_static_picture(run):
    view = notebook.worst_queries(run)
    assert view.figure is None
    view.picker.value = view.worst[3]
    assert view.query == view.worst[3]
    assert f"query #{view.worst[3]}</b>" in view.static_html()
    lens = notebook.lens(run)
    assert "Plotly" in lens.static_html()  # the map, drawn without a kernel


def test_anatomy_sliders_redraw_the_explained_batch():
    angles = np.array([0.0, 0.3, 0.6, 2.0, 2.3, 0.45, 4.1, 4.4])
    xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    view = notebook.anatomy(xy, "rll", labels)
    panel = next(i for i, f in enumerate(view.figures) if "w⁻" in f.layout.title.text)
    before = np.array(view.figures[panel].data[0].z, dtype=float)
    view.set(tn=40.0)
    after = np.array(view.figures[panel].data[0].z, dtype=float)
    drawn = view.outputs[panel].outputs[0]["data"]
    assert drawn == pio.renderers["plotly_mimetype"].to_mimebundle(view.figures[panel].to_dict())
    np.testing.assert_allclose(after, view.explained["negative_weights"])
    assert not np.allclose(before, after)  # a hotter T_n reweights the negatives
    assert "tn = 40" in view.static_html()

    context = notebook.anatomy(xy, "contextual", labels)
    for step, (key, title, _) in enumerate(CONTEXTUAL_STEPS):
        context.step.value = step
        assert context.step_figure.layout.title.text == title
        np.testing.assert_allclose(
            np.array(context.step_figure.data[0].z, dtype=float), context.explained[key]
        )
    context.step.value = 0
    small = np.array(context.step_figure.data[0].z).sum()
    context.set(k=6)
    assert np.array(context.step_figure.data[0].z).sum() > small  # larger k, larger N(i)


def test_replay_epoch_slider_moves_the_marker_and_the_numbers(tmp_path, make_run):
    run = make_run(tmp_path / "r", splits=(), n=12, classes=2, dim=4, flipped=range(0, 12, 4),
                   replay=(0, 2, 4), config={"name": "tiny"})  # fmt: skip
    view = notebook.replay(run)
    assert view.epochs == [0, 2, 4] and view.slider.value == 4
    view.play.value = 1  # the play button steps through the snapshots
    assert view.slider.value == 2
    assert {shape.x0 for shape in view.curves.layout.shapes} == {2}
    assert "<td>2</td>" in view.numbers.value
    memorised = run.replay_metrics().set_index("epoch").loc[2, "memorised"]
    assert f"{memorised:.3f}" in view.numbers.value
    assert view.maps == {}  # no aligned map before `dmlviz project`: the curves alone
    assert "Plotly" in view.static_html() and "<td>2</td>" in view.static_html()


def test_ap_at_r_widget_adds_up_to_the_stored_ap_at_r(run):
    view = notebook.ap_at_r(run)
    for _, query in view.picker.options[:3]:
        view.picker.value = query
        stored = run.per_query("test").set_index("query").loc[query, "ap@r"]
        assert view.steps["term"].sum() == pytest.approx(stored, abs=1e-6)
        assert f"{stored:.3f}" in view.static_html()


def test_consistency_picker_shows_each_runs_numbers(tmp_path):
    rng = np.random.default_rng(1)
    clean = np.repeat(np.arange(3), 12)
    observed = np.where(np.arange(36) % 6 == 0, (clean + 1) % 3, clean)
    np.save(tmp_path / "x.npy", np.eye(3)[clean] * 3 + rng.standard_normal((36, 3)))
    for name, labels in (("obs", observed), ("clean", clean)):
        (tmp_path / f"{name}.txt").write_text("".join(f"k{c}\n" for c in labels))
    runs = {}
    for label, clean_labels in (("told", tmp_path / "clean.txt"), ("not told", None)):
        run = import_embeddings(tmp_path / label, tmp_path / "x.npy", tmp_path / "clean.txt",
                                train_embeddings=tmp_path / "x.npy",
                                train_labels=tmp_path / "obs.txt", clean_labels=clean_labels)  # fmt: skip
        evaluate_run(run)
        runs[label] = run
    view = notebook.consistency(runs)
    assert view.auroc is not None and "flipped ✓" in view.suspects.value
    view.picker.value = "not told"
    assert view.auroc is None  # nothing known to be flipped: nothing to grade
    assert "clean:" not in view.suspects.value and "false alarm" not in view.suspects.value
    assert "Plotly" in view.static_html()
