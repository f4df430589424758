"""Sweep runs and tuning trials as Ray tasks (``--executor ray``), on a local Ray or a cluster.

Each item becomes one Ray task whose resources come from its training config (``task_resources``):
Ray starts as many at once as the cluster's free CPUs and GPUs allow. A task writes its run folder
and its progress records itself, so the experiment folder must be on a filesystem every node
mounts at the same path (``check_shared`` refuses one a node cannot see). Cancelling works
through the folder as with local processes: a run's cancel request file stops it between batches
wherever it trains; interrupting the driver (Ctrl-C, or SIGTERM from the noise lab) cancels every
task, which records its run ``interrupted`` so a later sweep resumes it from its last epoch.

Ray is an optional extra (``pip install -e '.[cluster]'`` in the checkout): this module imports it
only inside its functions, so the local executor never loads it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RAY_MISSING = (
    "--executor ray needs Ray: pip install -e '.[cluster]' in the dmlviz checkout "
    "(or pip install 'ray>=2.9')"
)
CONNECT_TIMEOUT_S = 5.0  # how long the cluster's port gets to take a connection
CANCEL_GRACE_S = 10.0  # how long cancelled tasks get to record their runs before they are killed


def ray_installed() -> bool:
    """Whether Ray can be imported here (asked without importing it)."""
    return importlib.util.find_spec("ray") is not None


def import_ray():
    """The ``ray`` module; ``ImportError`` with ``RAY_MISSING`` when it is not installed."""
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_MISSING) from None
    return ray


def connect(address: str | None = None) -> None:
    """Connect this process to the Ray cluster at ``address`` (``HOST:PORT``, ``auto`` or
    ``ray://HOST:10001``); without one, to ``$RAY_ADDRESS``, else a new local Ray on this
    machine's cores (``local``: never a cluster some other program started here with ``ray
    start``, which Ray's own default would join). A process already connected stays as it is.
    ``ValueError`` when none can be reached: within ``CONNECT_TIMEOUT_S`` for an address whose
    port does not answer (``check_reachable``; ``ray.init`` itself retries such an address for
    minutes)."""
    ray = import_ray()
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address != "local":
        check_reachable(address)
    local = {"include_dashboard": False} if address == "local" else {}
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, log_to_driver=True, **local)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ValueError(
            f"cannot reach a Ray cluster at --address {address}: {error}; start one with "
            "`ray start --head --port=6379` and pass HEAD:6379, and for a cluster with token "
            "authentication set RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN here too (see "
            "docs/cluster.md)"
        ) from None
    finally:
        if main:  # ray.init makes SIGTERM exit at once; keep ours, which lets tasks be cancelled
            signal.signal(signal.SIGTERM, sigterm)


def check_reachable(address: str, timeout: float | None = None) -> None:
    """Refuse a Ray ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) whose port takes no TCP
    connection within ``timeout`` seconds (default ``CONNECT_TIMEOUT_S``): ``ValueError`` naming
    it and how to start a cluster. ``auto`` and other forms without a port are left to Ray."""
    host, port = address_host_port(address)
    if port is None:
        return
    timeout = timeout or CONNECT_TIMEOUT_S
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        reason = (f"no answer within {timeout:g} s" if isinstance(error, TimeoutError)
                  else (error.strerror or str(error)).lower())  # fmt: skip
        raise ValueError(
            f"cannot reach a Ray cluster at --address {address} ({reason}): start one with `ray start --head --port=6379` "
            "and pass HEAD:6379, or leave --address out for a local Ray on this machine"
        ) from None


def address_host_port(address: str) -> tuple[str, int | None]:
    """``(host, port)`` of a Ray address (``HOST:PORT``, ``[IPv6]:PORT``, ``ray://HOST:PORT``);
    port None when it names none (``auto``, ``local``)."""
    split = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    try:
        port = split.port
    except ValueError:
        port = None
    return split.hostname or "", port


def task_resources(config: dict[str, Any]) -> dict[str, float]:
    """Ray's ``num_cpus`` and ``num_gpus`` for a task training ``config``: a GPU when its device
    is cuda, or automatic (None, "auto") on a cluster that has GPUs; its torch threads (1 when
    unset) plus its data-loader workers as CPUs."""
    ray = import_ray()
    device = str(config.get("device") or "auto")
    gpus = device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU"))
    cpus = int(config.get("num_threads") or 1) + int(config.get("num_workers") or 0)
    return {"num_cpus": cpus, "num_gpus": 1 if gpus else 0}


def check_shared(folder: str | Path) -> None:
    """Refuse a ``folder`` some live node of the cluster cannot see: ``ValueError`` naming those
    nodes. A probe file is written there and each node is asked whether it exists (nodes that
    join later are not asked)."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder = Path(folder).resolve()
    probe = folder / f".ray-probe-{secrets.token_hex(4)}"
    probe.touch()
    try:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        remote = ray.remote(num_cpus=0)(_call)
        answers = [
            remote.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], False)
            ).remote(os.path.exists, str(probe))
            for n in nodes
        ]
        blind = [
            n["NodeManagerAddress"]
            for n, seen in zip(nodes, ray.get(answers), strict=True)
            if not seen
        ]
    finally:
        probe.unlink(missing_ok=True)
    if blind:
        raise ValueError(
            f"{folder} is not visible on Ray node(s) {', '.join(blind)}: put --out on a "
            "filesystem every node mounts at the same path (NFS, a shared volume; see "
            "docs/cluster.md)"
        )


def run_tasks(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    resources: Callable[[Any], dict[str, float]],
    on_done: Callable[[Any, Any], None] | None = None,
    address: str | None = None,
    folder: str | Path | None = None,
) -> list[Any]:
    """``fn(item)`` for every item as a Ray task with ``resources(item)``; returns the results in
    ``items``' order. ``on_done(item, result)`` is called in this process as each one ends.
    ``folder`` (the experiment folder, when given) is checked with ``check_shared`` first. A
    ``KeyboardInterrupt`` here cancels every task that has not ended (``CANCEL_GRACE_S`` to stop
    cleanly, then killed) and is raised again; a task's error is raised here."""
    ray = import_ray()
    connect(address)
    if folder is not None:
        check_shared(folder)
    remote = ray.remote(_call)
    refs = [remote.options(**resources(item)).remote(fn, item) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(items)
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = index[ready[0]]
            results[i] = ray.get(ready[0])
            if on_done is not None:
                on_done(items[i], results[i])
    except BaseException:
        _cancel(ray, pending)
        raise
    return results


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """What a task runs (``fn`` travels pickled: a ``functools.partial`` is welcome)."""
    return fn(item)


def _cancel(ray, refs: list) -> None:
    """Cancel ``refs``: a KeyboardInterrupt in each running task (so the trainer records its run
    as interrupted), then kill those still running after ``CANCEL_GRACE_S``."""
    if not refs:
        return
    for ref in refs:
        ray.cancel(ref)
    _, left = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
    for ref in left:
        ray.cancel(ref, force=True)
