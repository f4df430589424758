"""Every dashboard page under streamlit's AppTest, on a small runs folder made by the fixture."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

import numpy as np
import pytest
from shared_files import HANG_GUARD_S


def _page(app, name: str):
    """Run the app, then switch to ``app_pages/<name>.py`` and run it again."""
    app.run()
    assert not app.exception, app.exception
    app.switch_page(f"app_pages/{name}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _spec(chart) -> dict:
    return json.loads(chart.proto.spec)


def _values(array) -> np.ndarray:
    """A plotly array from a chart spec (plotly >= 6 encodes numpy arrays as base64 'bdata')."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def _html(app) -> str:
    return "".join(element.proto.body for element in app.get("html"))


def _cells_shown(table) -> list[str]:
    """Every cell of an ``st.dataframe`` as the browser writes it: a missing value reads as the
    table's placeholder, "None" when it has none."""
    placeholder = table.proto.placeholder or "None"
    frame = table.value
    return [
        placeholder
        if value is None or (isinstance(value, float) and np.isnan(value))
        else str(value)
        for column in frame.columns
        for value in frame[column].astype(object)
    ]


def _no_none_in_tables(app) -> list[str]:
    """Every cell of every table of the page, after checking that none reads "None"."""
    cells = [cell for table in app.dataframe for cell in _cells_shown(table)]
    assert "None" not in cells
    return cells


def test_runs_page(app, runs_dir):
    app.run()
    assert not app.exception
    assert app.title[0].value == "Runs"
    table = app.dataframe[0].value
    assert set(table["Run"]) == {
        "contextual-noise0",
        "contextual-noise40",
        "rll-noise0",
        "rll-noise40",
    }
    assert {"MAP@R", "R@1", "Detector AUROC", "Hyperparameters", "Noise rate", "Seed"} <= set(table)
    errors = " ".join(e.value for e in app.error)
    assert "broken" in errors and "corrupt" in errors  # the broken run explains itself
    charts = app.get("plotly_chart")
    losses = {trace["name"] for trace in _spec(charts[0])["data"]}
    assert losses == {"Contextual", "Ranked List Loss"}
    curves = _spec(charts[2])["data"]
    assert [trace["name"] for trace in curves] == ["loss", "MAP@R", "R@1"]
    assert app.sidebar.selectbox[0].value.endswith("contextual-noise0")  # first run preselected


def test_runs_page_shows_the_tuning_study(app):
    app.run()
    assert not app.exception
    assert any("Hyperparameter tuning" in h.value for h in app.subheader)
    assert app.selectbox(key="tuning_study").value.endswith("tune-digits-rll")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Trials"] == "6" and metrics["Chosen trial"] == "0"  # confirmed, not luck
    trials = app.dataframe[1].value
    assert list(trials["Trial"]) == list(range(6))
    assert float(metrics["Its validation MAP@R"]) == pytest.approx(
        trials["With fresh seeds"].max(), abs=1e-4
    )
    titles = [_spec(c)["layout"]["title"]["text"] for c in app.get("plotly_chart")[3:]]
    assert titles == [
        "Validation MAP@R per trial",
        "Hyperparameter importance (fANOVA)",
    ]
    sources = set(app.dataframe[0].value["Hyperparameters"])
    assert sources == {"paper defaults"}  # each run's preset_source, next to the run
    assert next(m for m in app.metric if m.label == "Trials").proto.delta == "1 stopped early"
    assert any(h.value == "Presets" for h in app.subheader)
    presets = app.dataframe[-1].value
    assert set(presets["Dataset"]) == {"digits"} and len(presets) == 5  # the runs' dataset
    assert set(presets["Source"]) <= {"tuned on validation", "paper defaults"}


def test_runs_and_tuning_tables_show_missing_values_as_a_dash(app):
    app.run()
    assert not app.exception
    cells = _no_none_in_tables(app)
    assert "–" in cells  # the detector AUROC of noise-free runs, trials not confirmed
    runs = app.dataframe[0]
    assert runs.value["Detector AUROC"].isna().sum() == 2  # still numbers, not text
    auroc = json.loads(runs.proto.columns)["Detector AUROC"]
    assert "no flipped label to find" in auroc["help"]


def test_runs_page_row_selects_the_run(app):
    app.run()
    app.session_state["runs_table"] = {"selection": {"rows": [3], "columns": []}}
    app.run()
    assert not app.exception


def test_empty_runs_folder_explains_how_to_start(tmp_path, monkeypatch):
    import streamlit as st
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(tmp_path / "none"))
    st.cache_data.clear()
    app = AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S).run()
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert "make demo" in text and "dmlviz train --dataset digits --loss contextual" in text


def test_map_page_and_selection(app):
    _page(app, "map")
    assert app.title[0].value == "Embedding map"
    figure = _spec(app.get("plotly_chart")[0])
    assert all(trace["type"] == "scattergl" for trace in figure["data"])
    points = sum(len(_values(trace["x"])) for trace in figure["data"])
    assert points == 896  # the digits test split
    assert any("Trustworthiness" in c.value for c in app.caption)

    # a lasso over three points lists them with thumbnails
    app.session_state["map"] = {
        "selection": {
            "points": [
                {"point_index": 0, "customdata": [4]},
                {"point_index": 1, "customdata": [9]},
                {"point_index": 2, "customdata": [12]},
            ],
            "point_indices": [0, 1, 2],
            "box": [],
            "lasso": [],
        }
    }
    app.run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["sample"]) == [4, 9, 12]
    assert table["image"].str.startswith("data:image/png;base64,").all()

    # a click on one point makes it the lens query
    app.session_state["map"] = {
        "selection": {
            "points": [{"point_index": 0, "customdata": [21]}],
            "point_indices": [0],
            "box": [],
            "lasso": [],
        }
    }
    app.run()
    assert app.session_state["lens_query"] == {
        "run": app.session_state["run"],
        "split": "test",
        "index": 21,
    }
    app.run()  # in the browser the chart's callback does this before the rerun
    star = _spec(app.get("plotly_chart")[0])["data"][-1]
    assert star["name"] == "lens query"


def test_map_of_noisy_train_split_colours_flips(app, runs_dir):
    app.run()
    app.session_state["run"] = str(runs_dir / "sweep" / "rll-noise40")
    app.session_state["split"] = "train"
    app.switch_page("app_pages/map.py").run()
    assert not app.exception
    names = [trace["name"] for trace in _spec(app.get("plotly_chart")[0])["data"]]
    assert any(name.startswith("label flipped") for name in names)


def test_lens_page_shows_ranked_list_and_comparison(app, runs_dir):
    app.run()
    app.session_state["run"] = str(runs_dir / "sweep" / "contextual-noise40")
    app.session_state["split"] = "train"
    app.session_state["lens_query"] = {"run": "", "split": "train", "index": 3}
    app.switch_page("app_pages/lens.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.number_input(key="lens_index").value == 3
    html = _html(app)
    assert "query #3" in html
    assert html.count("<div class='dmlviz-card") == 1 + 2 * 10  # query + two ranked lists of K=10
    assert "trained as" in html  # 40 % noise: some neighbours carry flipped labels
    metrics = {m.label: m.value for m in app.metric}
    assert {"AP@R", "First correct rank", "R-precision", "Correct in top K"} <= set(metrics)
    partner = app.selectbox(key="lens_partner").value
    assert partner.endswith("rll-noise40")  # the other loss at the same noise rate
    changes = app.dataframe[0].value
    assert {"index", "move"} <= set(changes.columns)
    assert any(m.value.startswith("Over the whole split, MAP@R ") for m in app.markdown)

    app.number_input(key="lens_index").set_value(8).run()
    assert app.session_state["lens_query"]["index"] == 8
    assert "query #8" in _html(app)

    partner_box = app.selectbox(key="lens_partner")
    partner_box.select_index(len(partner_box.options) - 1).run()  # "no comparison": one list
    assert _html(app).count("<div class='dmlviz-card") == 1 + 10


@pytest.fixture(scope="module")
def broken_partner_runs(runs_dir, tmp_path_factory):
    """A runs folder with a good run and a comparison run whose neighbour table is corrupt."""
    import shutil

    root = tmp_path_factory.mktemp("partner")
    for name in ("contextual-noise0", "rll-noise0"):
        shutil.copytree(runs_dir / "sweep" / name, root / name)
    (root / "rll-noise0" / "eval" / "test_neighbours.npz").write_bytes(b"not a zip file")
    return root


def test_lens_shows_its_list_when_the_comparison_run_is_broken(
    app, broken_partner_runs, monkeypatch
):
    monkeypatch.setenv("DMLVIZ_RUNS", str(broken_partner_runs))
    app.run()
    app.session_state["run"] = str(broken_partner_runs / "contextual-noise0")
    app.switch_page("app_pages/lens.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="lens_partner").value.endswith("rll-noise0")  # the broken one
    assert _html(app).count("<div class='dmlviz-card") == 1 + 10  # the good run's own list
    assert any(h.value.startswith("Top 10: contextual-noise0") for h in app.subheader)
    (warning,) = app.warning
    assert "rll-noise0" in warning.value and "test_neighbours.npz is corrupt" in warning.value
    assert not app.error


def test_lens_worst_button(app):
    _page(app, "lens")
    app.button(key="lens_worst").click().run()
    assert not app.exception
    index = app.session_state["lens_query"]["index"]
    assert "query #" + str(index) in _html(app)


def test_consistency_page_offers_a_noisy_run_on_a_noise_free_one(app, runs_dir):
    _page(app, "consistency")  # the first run: contextual without label noise
    notice = " ".join(m.value for m in app.markdown)
    assert "This run has no label noise" in notice
    offer = app.button(key="consistency_noisy_run")
    assert "contextual-noise40" in offer.label  # the same loss's noisiest run
    offer.click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["run"] == str(runs_dir / "sweep" / "contextual-noise40")
    assert "This run has no label noise" not in " ".join(m.value for m in app.markdown)
    assert float({m.label: m.value for m in app.metric}["Detector AUROC"]) > 0.5


def test_map_offers_a_noisy_run_for_the_flipped_colouring(app, runs_dir):
    app.run()
    app.session_state["run"] = str(runs_dir / "sweep" / "rll-noise0")
    app.session_state["split"] = "train"
    app.session_state["map_color_train"] = "flipped"
    app.switch_page("app_pages/map.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert "This run has no label noise" in " ".join(m.value for m in app.markdown)
    app.button(key="map_noisy_run").click().run()
    assert app.session_state["run"] == str(runs_dir / "sweep" / "rll-noise40")
    names = [trace["name"] for trace in _spec(app.get("plotly_chart")[0])["data"]]
    assert any(name.startswith("label flipped") for name in names)
    assert not any(b.key == "map_noisy_run" for b in app.button)


def test_consistency_page(app, runs_dir):
    app.run()
    app.session_state["run"] = str(runs_dir / "sweep" / "contextual-noise40")
    app.switch_page("app_pages/consistency.py").run()
    assert not app.exception, [e.value for e in app.exception]
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Detector AUROC"]) > 0.5
    charts = app.get("plotly_chart")
    assert len(charts) == 2 + 3  # this run's histogram and ROC, three across-run charts
    assert "trained:" in _html(app)
    app.button(key="suspicious_open").click().run()
    assert not app.exception
    assert app.session_state["lens_query"]["split"] == "train"


def _svg(uri: str) -> str:
    assert uri.startswith("data:image/svg+xml;utf8,")
    return unquote(uri.split(",", 1)[1])


def test_worst_queries_page(app):
    _page(app, "queries")
    table = app.dataframe[0].value
    assert len(table) == 50  # a page: only these get thumbnails
    assert {m.label: m.value for m in app.metric}["Queries shown"] == "896 / 896"
    assert list(table["AP@R"]) == sorted(table["AP@R"])
    _no_none_in_tables(app)
    app.number_input(key="queries_page").set_value(18).run()  # the last page: 896 = 17 * 50 + 46
    assert len(app.dataframe[0].value) == 46
    app.multiselect(key="queries_classes").select("7").run()
    assert set(app.dataframe[0].value["class"]) == {"7"}
    assert app.number_input(key="queries_page").value == 1  # a new list starts on its first page
    assert app.get("download_button")
    first = int(app.dataframe[0].value["query"].iloc[0])
    app.session_state["queries_table"] = {"selection": {"rows": [0], "columns": []}}
    app.run()  # selecting a row opens the query in the lens
    assert not app.exception
    assert app.session_state["lens_query"]["index"] == first
    assert app.title[0].value == "Query lens"


def test_worst_queries_show_the_query_and_its_top1_as_images(app):
    _page(app, "queries")
    table = app.dataframe[0]
    columns = json.loads(table.proto.columns)
    assert columns["query_image"]["type_config"]["type"] == "image"
    assert columns["top1_image"]["type_config"]["type"] == "image"
    frame = table.value
    for _, row in frame.head(5).iterrows():
        query, top1 = _svg(row["query_image"]), _svg(row["top1_image"])
        assert "href='data:image/png;base64," in query and "href='data:image/png;base64," in top1
        assert f">{row['class']}</text>" in query and f">{row['top1_class']}</text>" in top1
    # the thumbnails are the run's own images (digits' ink), not the unreadable-image placeholder
    from dmlviz.views.thumbs import placeholder_uri

    assert placeholder_uri() not in _svg(frame["query_image"].iat[0])


def test_anatomy_page(app, runs_dir):
    app.run()
    app.session_state["run"] = str(runs_dir / "sweep" / "rll-noise40")
    app.session_state["split"] = "train"
    app.switch_page("app_pages/anatomy.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="anatomy_loss").value == "rll"
    before = {m.label: m.value for m in app.metric}["total loss"]
    key = f"anatomy_rll_alpha_{runs_dir / 'sweep' / 'rll-noise40'}"
    app.slider(key=key).set_value(1.8).run()
    assert {m.label: m.value for m in app.metric}["total loss"] != before
    app.selectbox(key="anatomy_loss").select("contextual").run()
    titles = [m.value for m in app.markdown]
    assert any("W: contextual similarity" in t for t in titles)


@pytest.fixture(scope="module")
def stripped_runs(runs_dir, tmp_path_factory):
    """A runs folder holding one run whose eval/ and projections/ were deleted."""
    import shutil

    root = tmp_path_factory.mktemp("stripped")
    shutil.copytree(runs_dir / "sweep" / "rll-noise0", root / "stripped")
    shutil.rmtree(root / "stripped" / "eval")
    shutil.rmtree(root / "stripped" / "projections")
    return root


@pytest.mark.parametrize("page", ["map", "lens", "queries", "anatomy", "consistency"])
def test_pages_survive_a_run_without_evaluation(app, stripped_runs, monkeypatch, page):
    """A run without evaluation or maps explains what to run, without a traceback."""
    monkeypatch.setenv("DMLVIZ_RUNS", str(stripped_runs))
    app.run()
    app.switch_page(f"app_pages/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    shown = " ".join(x.value for x in [*app.info, *app.error])
    if page in ("map", "queries", "consistency"):
        assert "dmlviz" in shown
    if page == "lens":  # no stored neighbours: the lens ranks from the embeddings
        assert any("Ranked now" in caption.value for caption in app.caption)


def test_replay_page_shows_two_runs_on_one_slider(app, runs_dir):
    app.session_state["run"] = str(runs_dir / "sweep" / "contextual-noise40")
    _page(app, "replay")
    assert app.title[0].value == "Training replay"
    assert app.selectbox(key="replay_partner").value.endswith("rll-noise40")  # other loss, 40 %
    slider = app.select_slider(key="replay_epoch")
    assert slider.options == ["0", "1", "2", "3"] and slider.value == 3
    charts = app.get("plotly_chart")
    maps, curves = charts[:2], charts[2]
    for chart in maps:
        names = [trace["name"] for trace in _spec(chart)["data"]]
        assert "flipped label" in names and "trail" in names
    panels = {trace["name"].split(":")[0] for trace in _spec(curves)["data"]}
    assert {"test MAP@R", "detector AUROC", "memorised share", "consistency (flipped)"} <= panels
    memorised = [m.value for m in app.metric if m.label == "memorised"]
    assert memorised == ["100 %", "100 %"]  # the made-up flips reach their told class by epoch 3
    slider.set_value(0).run()
    assert not app.exception
    assert [m.value for m in app.metric if m.label == "memorised"] == ["0 %", "0 %"]
    strips = _html(app)
    assert strips.count("class='dmlviz-strip'") == 4  # the query at epoch 0 and 3, for both runs


def test_replay_page_explains_a_run_without_replay(app, runs_dir):
    app.session_state["run"] = str(runs_dir / "sweep" / "rll-noise0")
    _page(app, "replay")
    assert "no replay snapshots" in app.info[0].value
    assert len(app.dataframe[0].value) == 2  # the runs that have one


@pytest.fixture
def unmapped_runs(runs_dir, tmp_path):
    """A runs folder holding one evaluated run whose projections/ were deleted."""
    import shutil

    shutil.copytree(runs_dir / "sweep" / "rll-noise0", tmp_path / "runs" / "unmapped")
    shutil.rmtree(tmp_path / "runs" / "unmapped" / "projections")
    return tmp_path / "runs"


def test_map_shows_pca_at_once_while_umap_computes(app, unmapped_runs, monkeypatch, umap_spawns):
    from dmlviz.runs import Run, atomic_write_json
    from dmlviz.runs.files import umap_progress_file

    monkeypatch.setenv("DMLVIZ_RUNS", str(unmapped_runs))
    _page(app, "map")
    run = Run.load(unmapped_runs / "unmapped")
    assert umap_spawns == [(run.path, "test")]  # UMAP went to the background
    assert app.radio(key="map_method").value == "pca"
    figure = _spec(app.get("plotly_chart")[0])
    assert sum(len(_values(t["x"])) for t in figure["data"]) == 896  # PCA, drawn at once
    assert "PCA was computed now" in app.info[0].value
    bar = app.get("progress")[0].proto
    assert "building the nearest-neighbour graph" in bar.text and bar.value < 10

    # the background process stores its map: the page switches to it
    coords, _ = run.projection("test", "pca")
    run.save_projection("test", "umap", coords[:, ::-1], {"method": "umap", "params": {}})
    atomic_write_json(run.path / umap_progress_file("test"), {"state": "done", "stage": "stored"})
    app.run()
    assert not app.exception
    assert app.radio(key="map_method").value == "umap"
    assert not app.get("progress") and not any(b.key == "map_start_umap" for b in app.button)
    drawn = _spec(app.get("plotly_chart")[0])["data"][0]
    assert _values(drawn["x"])[0] == pytest.approx(coords[int(_values(drawn["customdata"])[0]), 1])


def test_map_reports_a_failed_umap_and_offers_to_start_it_again(
    app, runs_dir, tmp_path, monkeypatch, umap_spawns
):
    import shutil

    from dmlviz.runs import atomic_write_json
    from dmlviz.runs.files import umap_progress_file

    run = tmp_path / "runs" / "pca-only"
    shutil.copytree(runs_dir / "sweep" / "rll-noise0", run)  # mapped with PCA only
    monkeypatch.setenv("DMLVIZ_RUNS", str(tmp_path / "runs"))
    failed = {"state": "failed", "stage": "failed", "error": "MemoryError: no room", "pid": None}
    atomic_write_json(run / umap_progress_file("test"), failed)
    _page(app, "map")
    assert "Computing UMAP failed: MemoryError: no room" in app.warning[0].value
    assert not app.get("progress") and umap_spawns == []
    app.button(key="map_start_umap").click().run()
    assert not app.exception
    assert umap_spawns == [(run, "test")]
    assert "UMAP" in app.get("progress")[0].proto.text and not app.warning
