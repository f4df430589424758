"""The HTML report (``dmlviz.views.report``) and ``dmlviz export ... --out FILE.html``, on the
dashboard tests' fixture runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from dmlviz.cli import main
from dmlviz.runs import RunError
from dmlviz.views.report import (
    RANKED,
    SUSPICIOUS,
    WORST_QUERIES,
    build_report,
    svg_figure,
    write_report,
)


@pytest.fixture(scope="module")
def runs(runs_dir) -> dict[str, Path]:
    """The dashboard tests' runs (built once per session: tests/conftest.py), by name."""
    return {path.name: path for path in (runs_dir / "sweep").iterdir()}


@pytest.fixture(scope="module")
def sweep_html(runs) -> str:
    return build_report(runs["rll-noise40"].parent)


def test_plotly_js_is_inlined_once_and_nothing_is_fetched(sweep_html):
    from plotly.offline import get_plotlyjs

    head, body = sweep_html.split("</head>")
    assert head.count(get_plotlyjs()) == 1 and get_plotlyjs() not in body
    assert len(re.findall(r"<script[^>]*\bsrc=", sweep_html)) == 0
    # one inlined library: the later figures only call it
    assert body.count("Plotly.newPlot") == body.count('class="plotly-graph-div"') > 10


def test_maps_are_drawn_as_svg(runs):
    from dmlviz.runs import Run
    from dmlviz.views.data import load_map, load_split
    from dmlviz.views.embedding_map import map_figure

    run = Run.load(runs["rll-noise40"])
    frame, _ = load_map(run, "train", "pca", load_split(run, "train"), None)
    figure = map_figure(frame, "flipped")
    assert {trace.type for trace in figure.data} == {"scattergl"}
    svg = svg_figure(figure)
    assert {trace.type for trace in svg.data} == {"scatter"}
    assert list(svg.data[0].x) == list(figure.data[0].x)
    assert svg.data[0].customdata.tolist() == figure.data[0].customdata.tolist()


def test_sweep_report_has_every_section(runs, sweep_html):
    assert "Retrieval against label noise" in sweep_html
    assert "Noise-detector AUROC" in sweep_html  # the consistency page's curves across runs
    assert "broken" in sweep_html  # the unreadable run folder is named, not fatal
    for name in ("contextual-noise0", "contextual-noise40", "rll-noise0", "rll-noise40"):
        assert str(runs[name]) in sweep_html  # its settings
    assert sweep_html.count("paper defaults") >= 4  # the preset source of each run
    assert sweep_html.count("Embedding map: train split") == 4
    assert sweep_html.count("coloured by flipped") == 2  # runs with flipped labels only
    assert sweep_html.count("worst queries of the test split") == 4
    assert sweep_html.count("Most suspicious training labels") == 4
    assert sweep_html.count("Training replay") == 2  # the noisy runs have replay
    assert "data:image/png;base64," in sweep_html


def test_sweep_report_gives_loss_against_loss_with_intervals(sweep_html):
    assert "Loss against loss" in sweep_html
    assert "At 40 % symmetric noise, MAP@R " in sweep_html and "over 1 and 1 seeds" in sweep_html


def test_caps_hold(runs):
    page = build_report(runs["rll-noise40"])
    assert page.count("dmlviz-card dmlviz-query") == WORST_QUERIES
    ranked = page.split("Most suspicious training labels")[0]
    assert ranked.count("title='sample #") == WORST_QUERIES * RANKED
    suspicious = page.split("Most suspicious training labels")[1].split("Training replay")[0]
    assert suspicious.count("title='sample #") == SUSPICIOUS


def test_maps_are_subsampled(runs, monkeypatch):
    import dmlviz.views.report as report

    monkeypatch.setattr(report, "MAX_MAP_POINTS", 50)
    page = build_report(runs["rll-noise40"])
    assert "a random 50 of its points" in page


def test_write_report_and_missing_source(runs, tmp_path):
    out = write_report(runs["contextual-noise0"], tmp_path / "deep" / "one.html")
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["one.html"]  # no temporary left
    with pytest.raises(RunError, match="no readable run"):
        build_report(tmp_path / "deep")


def test_cli_writes_html_for_html_and_files_otherwise(runs, tmp_path, capsys):
    assert main(["export", str(runs["rll-noise40"].parent), "--out", str(tmp_path / "r.html")]) == 0
    assert "MB" in capsys.readouterr().out
    assert "Training replay" in (tmp_path / "r.html").read_text()
    assert main(["export", str(runs["rll-noise40"]), "--out", str(tmp_path / "files")]) == 0
    assert (tmp_path / "files" / "test.npy").is_file()


def test_sweep_settings_and_presets(runs, tmp_path):
    import json
    import shutil

    sweep = tmp_path / "sweep"
    shutil.copytree(runs["rll-noise40"], sweep / "rll-noise40")
    spec = {"dataset": "digits", "losses": ["rll"], "noise_rates": [0.4], "seeds": [0, 1]}
    (sweep / "sweep.json").write_text(json.dumps(spec))
    page = build_report(sweep)
    settings = page.split("<h2>Sweep settings</h2>")[1].split("</table>")[0]
    assert "<th>seeds</th><td>0, 1</td>" in settings
    presets = page.split("<h3>Presets</h3>")[1].split("</table>")[0]
    assert "Ranked List Loss" in presets and "Contextual" not in presets
    assert "Sweep settings" not in build_report(runs["rll-noise40"])


def _killed_run(path: Path):
    """A digits run at 20 % noise whose trainer was SIGKILLed before any embedding."""
    import subprocess

    from fake_runs import make_run

    from dmlviz.runs import atomic_write_json

    config = {"noise_rate": 0.2, "noise_kind": "symmetric", "seed": 0}
    run = make_run(path, splits=(), dim=8, status={"state": "running", "epoch": 1, "epochs": 3},
                   config=config)  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    atomic_write_json(run.path / "status.json", {**run.status(), "pid": child.pid})
    return run


def test_a_killed_unevaluated_run_is_reported_as_died_with_the_commands(tmp_path):
    run = _killed_run(tmp_path / "killed")
    page = build_report(run.path)
    table = page[page.index("<h2>Runs</h2>") :]
    assert ">died<" in table and ">running<" not in table
    assert ">20 %<" in table and "20.000" not in table
    assert f"continue it with <code>dmlviz train --resume --out {run.path}</code>" in page
    assert f"run `dmlviz embed {run.path}`, then <code>dmlviz evaluate {run.path}</code>" in page


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, capsys):
    run = _killed_run(tmp_path / "killed")
    assert main(["export", str(run.path), "--out", "/proc/dmlviz-report.html"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --out: cannot write to /proc" in err
    with pytest.raises(ValueError, match="cannot make"):
        write_report(run.path, "/sys/dmlviz-x/r.html")
    assert not Path("/sys/dmlviz-x").exists()


def test_text_from_a_run_folder_is_escaped(runs, tmp_path):
    import json
    import shutil

    run = shutil.copytree(runs["rll-noise40"], tmp_path / "sweep" / "<b>bold")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "name": "<script>alert(1)</script>"}))
    page = build_report(run.parent)
    body = page.split("</head>")[1]
    assert "<script>alert(1)" not in body  # (plotly writes it as \\u003cscript\\u003e in figures)
    assert "<h2>&lt;script&gt;alert(1)&lt;/script&gt; · Ranked List Loss" in body  # its label
    assert "<b>bold" not in body and "&lt;b&gt;bold" in body  # its folder, in its settings


def test_the_templates_are_package_data():
    from fnmatch import fnmatch

    import dmlviz

    tomllib = pytest.importorskip("tomllib")
    package = Path(dmlviz.__file__).parent
    pyproject = tomllib.loads((package.parent / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["dmlviz"]
    templates = [p.relative_to(package).as_posix() for p in (package / "views/templates").iterdir()]
    assert templates and all(any(fnmatch(t, glob) for glob in shipped) for t in templates)
