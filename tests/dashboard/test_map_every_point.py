"""The Embedding map above ``MAX_MAP_POINTS``: a sample by default, every point with deck.gl
behind the "Draw all points" toggle, where a click makes the picked sample the lens query."""

from __future__ import annotations

import json

import numpy as np

from dmlviz.views.deck_map import POINTS_LAYER
from dmlviz.views.embedding_map import MAX_MAP_POINTS


def test_big_map_draws_every_point_with_deck_when_asked(app, make_run, tmp_path, monkeypatch):
    n = MAX_MAP_POINTS + 1
    run = make_run(tmp_path / "runs" / "big", n=n, classes=40, dim=4)
    coords = np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32)
    run.save_projection("test", "umap", coords, {"method": "umap", "params": {}})
    monkeypatch.setenv("DMLVIZ_RUNS", str(tmp_path / "runs"))
    app.run()
    app.session_state["run"] = str(run.path)
    app.session_state["split"] = "test"
    app.switch_page("app_pages/map.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.get("plotly_chart") and not app.get("deck_gl_json_chart")  # the sample first

    app.toggle(key="map_every_point").set_value(True).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.get("plotly_chart")
    spec = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
    assert len(spec["layers"][0]["data"]) == n
    assert any("Drawn: all" in caption.value for caption in app.caption)

    picked = {"indices": {POINTS_LAYER: [5]}, "objects": {POINTS_LAYER: [{"i": 17}]}}
    app.session_state["map_deck"] = {"selection": picked}
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["lens_query"]["index"] == 17
