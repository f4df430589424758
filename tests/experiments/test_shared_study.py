"""dmlviz tune --storage: workers with their own folders searching one study together."""

from dmlviz.experiments.tune import TRIAL_FOLDER, base_config, open_study, suggest, tune


def test_workers_of_one_study_leave_each_others_trials_alone_and_the_last_confirms(tmp_path):
    url = f"journal:{tmp_path / 'shared.journal'}"
    settings = dict(budget=2, folds=1, epochs=1, log=None, storage=url)
    study = open_study(url, "digits-rll", 0)
    other = study.ask()  # a trial another worker (its own --out) trains meanwhile
    suggest(other, "rll", base_config("digits", "rll", epochs=1))
    study.set_user_attr("seed", 0)  # a study made by that worker: settings recorded, trial 0 taken
    other.set_user_attr(TRIAL_FOLDER, str(tmp_path / "worker-2"))

    assert tune("digits", "rll", tmp_path / "worker-1", **settings) == {}  # others still search
    states = {t.number: t.state.name for t in open_study(url, "digits-rll", 0).trials}
    assert states == {0: "RUNNING", 1: "COMPLETE"}  # worker 1 retired nothing of worker 2's
    assert not (tmp_path / "worker-1" / "preset.json").exists()

    study.tell(other, 0.5)  # worker 2's trial ends: the budget is spent
    entry = tune("digits", "rll", tmp_path / "worker-1", **settings)
    assert entry["budget"] == 2 and set(entry["confirmed"]) == {"0", "1"}
    assert (tmp_path / "worker-1" / "preset.json").exists()
