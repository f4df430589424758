"""--executor ray on a local Ray: a sweep, a cancelled and resumed run, a study, a cancelled driver,
and a noise-lab experiment cancelled on the cluster."""

import os
import shutil
import tempfile
import threading
import time

import pytest
from shared_files import HANG_GUARD_S

from dmlviz.experiments.folder import clear_cancel_requests, read_progress, request_cancel
from dmlviz.experiments.launcher import cancel_experiment, start_experiment
from dmlviz.experiments.ray_executor import CANCEL_GRACE_S, run_tasks
from dmlviz.experiments.runner import run_sweep
from dmlviz.experiments.spec import SweepSpec
from dmlviz.experiments.state import experiment_state, log_tail
from dmlviz.experiments.tune import TRIAL_FOLDER, open_study, tune
from dmlviz.runs import Run
from dmlviz.views.lab import form_spec
from dmlviz.views.tuning import find_studies, study_table


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """A Ray of our own for this module: ``address="local"`` never joins a cluster another program
    started on this machine (``ray start``, $RAY_ADDRESS), and its own temp dir keeps its session
    files apart from that cluster's (a short path: Ray's socket paths must fit 107 bytes)."""
    ray = pytest.importorskip("ray")
    temp_dir = tempfile.mkdtemp(prefix="dmlviz-ray-")
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir)
            break
        except Exception as error:
            ray.shutdown()  # Ray waits a fixed 30 s for its raylet: on a busy machine, try again
            if "timed out during startup" not in str(error) or time.monotonic() > deadline:
                raise
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def _spec(**changes):
    settings = dict(dataset="digits", losses=["contextual", "rll"], noise_rates=[0.2], epochs=1,
                    umap=False, executor="ray")  # fmt: skip
    return SweepSpec(**{**settings, **changes})


def test_a_sweep_on_ray_trains_each_run_in_a_task_as_the_local_pool_does(tmp_path):
    frame = run_sweep(_spec(), tmp_path / "ray", log=None)
    local = run_sweep(_spec(executor="local"), tmp_path / "local", log=None)
    assert list(frame["state"]) == ["finished", "finished"]
    assert frame["map@r"].tolist() == pytest.approx(local["map@r"].tolist(), abs=1e-6)
    for name in frame["name"]:
        status = Run.load(tmp_path / "ray" / name).status()
        assert status["state"] == "finished" and status["pid"] != os.getpid()  # a Ray worker
    events = [r["event"] for r in read_progress(tmp_path / "ray")]
    assert events.count("run_finished") == 2 and events.count("epoch") == 2
    assert experiment_state(tmp_path / "ray")["phase"] == "finished"


def test_a_cancelled_run_stops_and_a_resumed_sweep_continues_it(tmp_path):
    out, name = tmp_path / "sweep", "rll-noise0-seed0"
    spec = _spec(losses=["rll"], noise_rates=[0.0], epochs=8)

    def cancel_after_the_first_epoch():
        while not any(r.get("event") == "epoch" for r in read_progress(out)):
            time.sleep(0.02)
        request_cancel(out, name)

    watcher = threading.Thread(target=cancel_after_the_first_epoch, daemon=True)
    watcher.start()
    frame = run_sweep(spec, out, log=None)
    watcher.join(timeout=HANG_GUARD_S)
    assert frame.loc[0, "state"] == "cancelled"
    assert experiment_state(out)["runs"][0]["state"] == "cancelled"
    stopped = Run.load(out / name).status()
    assert stopped["state"] == "cancelled" and 1 <= stopped["epoch"] < 8

    clear_cancel_requests(out)
    before = len(read_progress(out))
    frame = run_sweep(spec, out, log=None)
    assert frame.loc[0, "state"] == "finished"
    resumed = read_progress(out)[before:]
    assert next(r for r in resumed if r["event"] == "run_started")["resumed"] is True
    epochs = [r["epoch"] for r in resumed if r["event"] == "epoch"]
    assert epochs == list(range(stopped["epoch"] + 1, 9))  # from its last epoch on


def test_a_study_on_ray_runs_its_trials_as_tasks_sharing_a_journal(tmp_path):
    out = tmp_path / "tune"
    entry = tune("digits", "rll", out, budget=2, folds=1, epochs=1, log=None, executor="ray")
    assert (out / "study.journal").exists() and not (out / "study.db").exists()
    study = open_study(f"journal:{out / 'study.journal'}", "digits-rll", 0)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert {t.user_attrs[TRIAL_FOLDER] for t in study.trials} == {str(out.resolve())}
    assert set(entry["confirmed"]) == {"0", "1"} and 0 <= entry["val_map@r"] <= 1
    assert entry["command"].endswith("--folds 1 --epochs 1 --executor ray")
    assert find_studies(tmp_path) == [out] and list(study_table(out)["trial"]) == [0, 1]  # shown
    trial_run = Run.load(out / "trials" / "trial-001" / "fold-0")
    assert trial_run.status()["pid"] != os.getpid()
    resumed = tune("digits", "rll", out, budget=2, folds=1, epochs=1, log=None, executor="ray")
    assert resumed["val_map@r"] == entry["val_map@r"]  # nothing left to search or confirm


def test_an_interrupted_driver_cancels_the_tasks_still_running(local_ray, tmp_path):
    interrupted = []

    def interrupt(item, result):
        interrupted.append(time.perf_counter())
        raise KeyboardInterrupt

    def nap(seconds):  # Python code between naps, as training runs, notices the cancellation
        for _ in range(int(seconds * 10)):
            time.sleep(0.1)

    with pytest.raises(KeyboardInterrupt):  # the short task ends, the long one is cancelled
        run_tasks(nap, [0.1, HANG_GUARD_S], lambda item: {"num_cpus": 1}, interrupt)
    # it stopped by itself within the grace, not killed after it (the workers' start is not timed)
    assert time.perf_counter() - interrupted[0] < CANCEL_GRACE_S
    both_cpus = local_ray.remote(num_cpus=2)(lambda: "free")
    assert local_ray.get(both_cpus.remote(), timeout=HANG_GUARD_S) == "free"  # no CPU held now


def test_the_noise_lab_starts_and_cancels_an_experiment_on_a_ray_cluster(local_ray, tmp_path):
    address = local_ray.get_runtime_context().gcs_address
    spec, problems = form_spec("digits", ["rll"], "0", "0", epochs=60, umap=False,
                               executor="ray", address=address)  # fmt: skip
    assert problems == [] and spec["address"] == address
    experiment = start_experiment(spec, tmp_path)
    deadline = time.monotonic() + HANG_GUARD_S  # the wait ends when the process does
    while not any(r.get("event") == "epoch" for r in read_progress(experiment.folder)):
        assert experiment.running() and time.monotonic() < deadline, log_tail(experiment.folder)
        time.sleep(0.05)
    cancel_experiment(experiment.folder)  # the sweep process is stopped, and with it its task
    state = experiment_state(experiment.folder)
    assert state["phase"] == "cancelled" and state["runs"][0]["state"] == "cancelled"
    stopped = Run.load(experiment.folder / "rll-noise0-seed0").status()
    assert stopped["state"] == "cancelled" and 1 <= stopped["epoch"] < 60  # resumable from there
    events = [r["event"] for r in read_progress(experiment.folder)]
    assert "sweep_interrupted" in events  # the sweep's SIGTERM handler ran, so its task was asked
    both_cpus = local_ray.remote(num_cpus=2)(lambda: "free")
    assert local_ray.get(both_cpus.remote(), timeout=HANG_GUARD_S) == "free"  # it has stopped
