"""`dmlviz train`, `dmlviz runs`, `dmlviz embed`: config files, flag overrides, argparse-style errors."""

import json

import pytest

from dmlviz.cli import main
from dmlviz.runs import Run

FAST = ["--epochs", "2", "--batches-per-epoch", "3", "--num-threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run trained, embedded and evaluated through the command line."""
    root = tmp_path_factory.mktemp("runs")
    code = main(["train", "--dataset", "digits", "--loss", "contrastive", "--noise", "0.2",
                 "--out", str(root / "ctx-n20"), *FAST])  # fmt: skip
    assert code == 0
    return root


def test_train_then_runs_shows_the_metrics(trained, capsys):
    run = Run.load(trained / "ctx-n20")
    assert run.config["noise_rate"] == 0.2 and run.config["epochs"] == 2
    assert run.has_embeddings("train") and run.has_embeddings("test")
    assert run.eval_metrics("test")["map@r"] > 0
    (trained / "broken").mkdir()
    (trained / "broken" / "config.json").write_text("{oops")
    assert main(["runs", str(trained)]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["name", "dataset", "model", "loss"]
    assert row.split()[:5] == ["ctx-n20", "digits", "mlp", "contrastive", "0.2"]
    assert "finished" in row and "2/2" in row
    assert f"{run.eval_metrics('test')['map@r']:.4f}" in row
    assert "1 broken run(s)" in out and "config.json is corrupt" in out


def test_config_file_with_flag_overrides(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "dataset: digits\nloss: rll\nepochs: 5\nseed: 3\nloss_kwargs: {margin: 0.5}\n"
    )
    out = tmp_path / "r"
    code = main(["train", "--config", str(config), "--out", str(out), *FAST, "--no-eval"])
    assert code == 0
    run = Run.load(out)
    assert run.config["epochs"] == 2  # the flag wins
    assert run.config["seed"] == 3 and run.config["loss"] == "rll"
    assert run.config["loss_kwargs"] == {"margin": 0.5}
    assert not run.has_embeddings("test")


def test_loss_kwargs_flag_and_json_config(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "digits", "loss": "contrastive"}))
    out = tmp_path / "r"
    args = ["train", "--config", str(config), "--loss-kwargs", '{"neg_margin": 0.8}']
    assert main([*args, "--out", str(out), *FAST, "--epochs", "1", "--no-eval"]) == 0
    run = Run.load(out)
    assert run.config["loss_kwargs"] == {"neg_margin": 0.8}
    assert run.config["preset_source"] == "user settings"


def test_preset_flag_picks_the_paper_defaults_and_an_lr_flag_makes_user_settings(tmp_path):
    from dmlviz.presets import preset

    paper = preset("digits", "rll", kind="paper")
    out = tmp_path / "paper"
    base = ["train", "--dataset", "digits", "--loss", "rll", *FAST, "--epochs", "1", "--no-eval"]
    assert main([*base, "--preset", "paper", "--out", str(out)]) == 0
    config = Run.load(out).config
    assert config["loss_kwargs"] == paper["loss_kwargs"] and config["lr"] == paper["lr"]
    assert config["preset_source"] == "paper defaults"
    assert main([*base, "--preset", "paper", "--lr", "0.01", "--out", str(tmp_path / "lr")]) == 0
    config = Run.load(tmp_path / "lr").config
    assert config["lr"] == 0.01 and config["preset_source"] == "user settings"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--dataset", "mnist", "--loss", "rll"],
            "argument --dataset: 'mnist' is invalid: choose one of digits",
        ),
        (
            ["--dataset", "digits", "--loss", "arc"],
            "argument --loss: 'arc' is invalid: choose one of",
        ),
        (
            ["--dataset", "digits", "--loss", "rll", "--noise", "1.2"],
            "argument --noise: 1.2 is invalid",
        ),
        (
            ["--dataset", "digits", "--loss", "rll", "--m-per-class", "7"],
            "argument --m-per-class: 7",
        ),
        (["--loss", "rll"], "argument --dataset is required"),
        (["--config", "nowhere.yaml"], "argument --config: file not found: nowhere.yaml"),
        (["--dataset", "digits", "--loss", "rll", "--loss-kwargs", "[1]"], "not a JSON object"),
        (["--resume"], "argument --out is required with --resume"),
    ],
)
def test_bad_options_name_the_option(tmp_path, capsys, argv, message):
    out = [] if "--resume" in argv else ["--out", str(tmp_path / "r")]
    assert main(["train", *argv, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dmlviz train: error: ")
    assert message in err
    assert not (tmp_path / "r" / "config.json").exists()


def test_unknown_key_in_a_config_file_names_the_file(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: digits\nloss: rll\nbatchsize: 10\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{config}: key batchsize" in err and "known keys" in err


def test_unparseable_number_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "digits", "--loss", "rll", "--epochs", "many"])
    assert info.value.code == 2
    assert "argument --epochs: invalid int value: 'many'" in capsys.readouterr().err


def test_resume_and_embed_commands(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--dataset", "digits", "--loss", "contrastive", "--out", str(out),
                 *FAST, "--no-eval"]) == 0  # fmt: skip
    assert (
        main(
            ["train", "--resume", "--out", str(out), "--epochs", "3", "--no-progress", "--no-eval"]
        )
        == 0
    )
    assert Run.load(out).metrics()["epoch"].tolist() == [1, 2, 3]
    capsys.readouterr()
    assert main(["embed", str(out), "--split", "test"]) == 0
    n_test = len(Run.load(out).dataset("test"))
    assert f"embeddings/test.npz: {n_test} x 64" in capsys.readouterr().out
    assert Run.load(out).has_embeddings("test") and not Run.load(out).has_embeddings("train")
    assert main(["embed", str(tmp_path / "absent")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_runs_on_an_empty_or_missing_folder(tmp_path, capsys):
    assert main(["runs", str(tmp_path)]) == 0
    assert "no runs below" in capsys.readouterr().out
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_loss_settings_from_a_config_file_are_user_settings(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "digits", "loss": "rll", "lr": 0.01}))
    out = tmp_path / "r"
    args = ["train", "--config", str(config), "--out", str(out), *FAST, "--epochs", "1"]
    assert main([*args, "--no-eval"]) == 0
    assert Run.load(out).config["preset_source"] == "user settings"
