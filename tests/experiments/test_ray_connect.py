"""A Ray address that does not answer fails within seconds, naming it, before anything is written
(``ray.init`` alone retries such an address for minutes, deaf to SIGTERM meanwhile)."""

import os
import socket
import subprocess
import sys
import time

import pytest

from dmlviz.experiments.ray_executor import address_host_port, check_reachable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_addresses_are_split_into_host_and_port():
    assert address_host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert address_host_port("ray://head:10001") == ("head", 10001)
    assert address_host_port("[::1]:6379") == ("::1", 6379)
    assert address_host_port("auto") == ("auto", None)


def test_a_refused_port_is_named_at_once():
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(ValueError, match=rf"cannot reach a Ray cluster at --address 127.0.0.1:{port} \(connection refused\)"):  # fmt: skip
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_sweep_and_tune_on_an_unreachable_cluster_fail_in_seconds_writing_nothing(tmp_path,
                                                                                  command):  # fmt: skip
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    options = {
        "sweep": ["--losses", "rll", "--no-umap"],
        "tune": ["--loss", "rll", "--budget", "1"],
    }
    out = tmp_path / "out"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dmlviz", command, "--dataset", "digits", "--epochs", "1",
         *options[command], "--executor", "ray", "--address", address, "--out", str(out)],
        capture_output=True, text=True, timeout=90, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ROOT, "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    err = done.stderr.strip().splitlines()
    assert err[-1].startswith(f"dmlviz {command}: error: cannot reach a Ray cluster at --address "
                              f"{address} (connection refused)"), err  # fmt: skip
    assert time.monotonic() - started < 60
    assert not out.exists()


def test_a_sweep_spec_naming_an_unreachable_cluster_writes_nothing(tmp_path):
    """The library path (a noise-lab experiment's spec, $RAY_ADDRESS): the sweep connects before
    its folder, sweep.json or progress.jsonl exist."""
    pytest.importorskip("ray")
    from dmlviz.experiments.runner import run_sweep
    from dmlviz.experiments.spec import SweepSpec

    address = f"127.0.0.1:{_closed_port()}"
    spec = SweepSpec(dataset="digits", losses=["rll"], noise_rates=[0.0], epochs=1, umap=False,
                     executor="ray", address=address)  # fmt: skip
    with pytest.raises(ValueError, match=f"cannot reach a Ray cluster at --address {address}"):
        run_sweep(spec, tmp_path / "out", log=None)
    assert not (tmp_path / "out").exists()
