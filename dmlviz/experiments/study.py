"""Where a tuning study lives and how it is opened, checked and resumed (Optuna storage).

The study of ``dmlviz tune --out OUT`` lives in ``OUT/study.db`` (SQLite), so an interrupted
search resumes where it stopped; ``OUT/study.journal`` when Ray tasks on several machines share
it, or the storage named by ``--storage`` (docs/cluster.md).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from dmlviz.experiments.folder import PRESET_JSON
from dmlviz.runs.walk import STUDY_FILE, STUDY_JOURNAL, STUDY_RUN_FOLDERS
from dmlviz.validate import InvalidValue

STUDY_DB = STUDY_FILE
STORAGE_FORMS = ("journal:", "sqlite:", "postgresql", "mysql")  # what --storage accepts
TRIAL_FOLDER = "folder"  # trial attribute: the study folder whose process runs the trial
TRIALS_DIR = STUDY_RUN_FOLDERS[0]  # fold runs: not listed as runs (dmlviz.runs.walk)
PRUNE_AFTER = 5  # trials that always run every fold before the median pruner starts


def study_storage(out: Path, storage: str | None, executor: str = "local") -> str:
    """Where the study of ``out`` lives: ``storage`` when given (``journal:PATH``, a journal file
    that processes on several machines can share through NFS and the like, or an RDB URL such as
    ``postgresql://user:password@host/db``), else ``<out>/study.journal`` when it exists or when
    Ray trains the trials (SQLite's locks are unsafe for writers on several machines), else
    ``sqlite:///<out>/study.db``. ``ValueError`` for any other form, or for Ray and an existing
    ``study.db``."""
    if storage is not None:
        if not isinstance(storage, str) or not storage.startswith(STORAGE_FORMS):
            raise InvalidValue(
                "storage",
                storage,
                "give journal:PATH (a file on a shared filesystem) or an RDB URL such as "
                "postgresql://user:password@host/db",
            )
        return storage
    journal, sqlite = out / STUDY_JOURNAL, out / STUDY_DB
    if journal.exists() or (executor == "ray" and not sqlite.exists()):
        return f"journal:{journal}"
    if executor == "ray":
        raise ValueError(
            f"{sqlite} is an SQLite study, which Ray tasks on several machines cannot share: "
            "resume it with --executor local, or search anew with another --out"
        )
    return f"sqlite:///{sqlite}"


def open_study(url: str, name: str, seed: int):
    """The Optuna study ``name`` at ``url`` (``study_storage``), created when absent: TPE seeded
    with ``seed``, maximising, pruned by the median of earlier trials at each fold."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # multivariate TPE is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.create_study(
        study_name=name,
        storage=optuna_storage(url),
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER),
        load_if_exists=True,
    )


def optuna_storage(url: str):
    """The Optuna storage at ``url`` (``study_storage``), opened: a ``JournalStorage`` for
    ``journal:PATH``, an ``RDBStorage`` otherwise. ``ValueError`` naming the storage, the reason
    and the fix when it cannot be opened (a path that cannot be written, a missing database
    driver, a database that does not answer)."""
    import sqlalchemy.exc
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        if url.startswith("journal:"):
            return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        return RDBStorage(url)
    except ImportError:
        fix = "install the database driver for it (e.g. pip install psycopg2-binary)"
        reason = "its database driver is not installed"
    except OSError as error:
        fix, reason = "give a file in a folder you can write to", error.strerror or str(error)
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        fix = "check the URL, that its folder exists and that the database server answers"
    raise ValueError(f"cannot open --storage {_shown(url)}: {reason}; {fix}")


def study_name(dataset: str, loss: str) -> str:
    """The name of the study that tunes ``loss`` on ``dataset``."""
    return f"{dataset}-{loss}"


def check_same_study(out: Path, dataset: str, loss: str) -> None:
    """Refuse a study folder ``out`` that holds the search of another dataset or loss (by its
    study file, its ``preset.json`` or a fold run's config): ``ValueError`` saying what it holds,
    how to resume that, and to choose another ``--out`` otherwise. Reads only."""
    import optuna

    held: set[tuple[str, str]] = set()
    for path, url in [(out / STUDY_JOURNAL, f"journal:{out / STUDY_JOURNAL}"),
                      (out / STUDY_DB, f"sqlite:///{out / STUDY_DB}")]:  # fmt: skip
        if path.is_file():
            for summary in optuna.get_all_study_summaries(optuna_storage(url)):
                attrs = summary.user_attrs
                held.add((attrs.get("dataset", "?"), attrs.get("loss", summary.study_name)))
    for path in [out / PRESET_JSON, *sorted(out.glob(f"{TRIALS_DIR}/*/fold-*/config.json"))[:1]]:
        try:
            record = json.loads(path.read_text())
            held.add((str(record["dataset"]), str(record["loss"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    others = sorted(held - {(dataset, loss)})
    if others:
        other_dataset, other_loss = others[0]
        raise ValueError(
            f"--out {out} holds the study of --loss {other_loss} on --dataset {other_dataset}: "
            f"choose another --out for --loss {loss} on {dataset}, or resume that study with "
            f"--dataset {other_dataset} --loss {other_loss}"
        )


def check_settings(study, settings: dict[str, Any], url: str) -> None:
    """Record the search's settings on a new study; refuse to resume one made with others."""
    stored = study.user_attrs
    if not stored:
        for key, value in settings.items():
            study.set_user_attr(key, value)
        return
    for key, value in settings.items():
        if key in stored and stored[key] != value:
            raise ValueError(
                f"the study {study.study_name} in {_shown(url)} was searched with "
                f"{key}={stored[key]!r}, not {value!r}; use the same settings to resume it, or "
                "another --out (or --storage)"
            )


def _shown(url: str) -> str:
    """``url`` with an RDB password masked, for messages."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def retire_stale_trials(study, out: Path) -> None:
    """Mark trials left running by an interrupted search in ``out`` as failed, delete their
    partial runs and queue their parameters again so the search covers the same points. Trials
    that other folders' workers of a shared study run are left alone."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(TRIAL_FOLDER, str(out)) != str(out):
            continue
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        shutil.rmtree(out / TRIALS_DIR / f"trial-{trial.number:03d}", ignore_errors=True)
        if trial.params:
            study.enqueue_trial(trial.params)


def finished_states() -> tuple:
    """The trial states that count against a search's budget."""
    import optuna

    state = optuna.trial.TrialState
    return state.COMPLETE, state.PRUNED, state.FAIL


def finished_trials(study) -> list:
    return [t for t in study.trials if t.state in finished_states()]
