"""The runs table says how each run's data was split and how many test classes also train."""

from fake_runs import make_run

from dmlviz.views.runs import display_table, runs_overview, shared_settings


def _run(root, name, **recorded):
    return make_run(root / name, splits=(), dim=8, config={"dataset": "folder", **recorded})


def test_layouts_that_differ_are_columns(tmp_path):
    runs, _ = runs_overview(
        [
            _run(tmp_path, "a", split_layout="seeded class split", test_classes_in_train=0),
            _run(tmp_path, "b", split_layout="train/test folders", test_classes_in_train=12),
        ]
    )
    table = display_table(runs).set_index("Run")
    assert table.loc["b", "Splits"] == "train/test folders"
    assert table.loc["b", "Test classes in train"] == 12
    assert table.loc["a", "Test classes in train"] == 0


def test_a_shared_layout_is_stated_once_and_unrecorded_ones_are_left_out(tmp_path):
    shared = [_run(tmp_path, n, split_layout="csv split column", test_classes_in_train=0)
              for n in ("a", "b")]  # fmt: skip
    runs, _ = runs_overview(shared)
    settings = shared_settings(runs)
    assert settings["split_layout"] == "csv split column"
    assert settings["test_classes_in_train"] == 0
    assert not {"Splits", "Test classes in train"} & set(display_table(runs).columns)
    older, _ = runs_overview([_run(tmp_path, "old-1"), _run(tmp_path, "old-2")])
    assert "split_layout" not in shared_settings(older)
    assert not {"Splits", "Test classes in train"} & set(display_table(older).columns)
