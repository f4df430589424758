"""dmlviz demo: trains the (quick) demo sweep once, then reuses it and serves the dashboard."""

import dmlviz.cli.dashboard as dashboard
from dmlviz.cli import main
from dmlviz.experiments.spec import DEMO_LOSSES, DEMO_NOISE_RATES, demo_spec


def test_the_demo_sweep_is_the_documented_one():
    spec = demo_spec()
    assert spec.dataset == "digits" and spec.seeds == [0] and spec.umap
    assert spec.losses == DEMO_LOSSES == ["contextual", "rll", "multisimilarity"]
    assert spec.noise_rates == DEMO_NOISE_RATES == [0.0, 0.2, 0.4]
    quick = demo_spec(quick=True)
    assert (len(quick.losses), len(quick.noise_rates), quick.epochs) == (1, 1, 1)


def test_quick_demo_trains_once_then_reuses_and_serves(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-serve", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert "contextual-noise20-seed0: finished" in first and "demo sweep took" in first
    calls = []
    monkeypatch.setattr(dashboard, "serve", lambda *args: calls.append(args) or 0, raising=True)
    code = main(["demo", "--quick", "--out", str(out), "--port", "8765"])
    assert code == 0
    second = capsys.readouterr().out
    assert "reusing the finished demo runs" in second
    assert "http://127.0.0.1:8765" in second
    assert calls == [(out, "127.0.0.1", 8765, False)]


def test_demo_runs_made_with_other_settings_are_kept_aside_and_retrained(
    tmp_path, capsys, monkeypatch
):
    import json

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quick", "--no-serve"]) == 0
    config_file = tmp_path / "runs/demo-quick/contextual-noise20-seed0/config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "lr": config["lr"] * 2}))  # an older preset
    capsys.readouterr()
    assert main(["demo", "--quick", "--no-serve", "--out", "runs/demo-quick"]) == 2
    assert "was trained with other lr); choose another --out" in capsys.readouterr().err
    assert main(["demo", "--quick", "--no-serve"]) == 0
    said = capsys.readouterr().out
    assert "moved it to runs/demo-quick-old" in said and "demo sweep took" in said
    kept = json.loads((tmp_path / "runs/demo-quick-old" / config_file.relative_to(
        tmp_path / "runs/demo-quick").as_posix()).read_text())  # fmt: skip
    assert kept["lr"] == config["lr"] * 2
    assert json.loads(config_file.read_text())["lr"] == config["lr"]
