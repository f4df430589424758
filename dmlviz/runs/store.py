"""Checked reads and atomic writes of the files of one run folder: the base of ``Run``.

Every write is atomic (``dmlviz.runs.atomic``); every read validates what it reads and raises
``RunError`` naming the file and what remakes it (``remake``, which ``Run`` says).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmlviz.runs.atomic import atomic_writer


class RunError(ValueError):
    """A run directory is missing, incomplete or corrupt; the message names the file and the fix."""


class RunFiles:
    """A run folder ``path`` with its ``config``: the file helpers every part of ``Run`` uses."""

    def __init__(self, path: Path, config: dict[str, Any]):
        self.path = Path(path)
        self.config = config

    @property
    def name(self) -> str:
        """The run's name: its config name, else its folder name."""
        return str(self.config.get("name") or self.path.name)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def remake(self, relative: str) -> str:
        """What rewrites the run's file ``relative``, as advice that ends a message (``Run``)."""
        raise NotImplementedError

    def _read_json(self, relative: str, required: bool = True) -> Any:
        path = self.path / relative
        if not path.exists():
            if required:
                raise RunError(f"{path} is missing")
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunError(f"{path} is corrupt ({error}); {self.remake(relative)}") from None

    def _save_npz(self, relative: str, **arrays: Any) -> None:
        # streamed to the file: a million embeddings are not held a second time as bytes
        with atomic_writer(self.path / relative) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())

    def _load_npz(
        self, relative: str, required: bool = True, hint: str = "", fix: str = ""
    ) -> dict | None:
        path = self.path / relative
        if not path.exists():
            if required:
                raise RunError(f"{path} is missing" + (f": {hint}" if hint else ""))
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise RunError(f"{path} is corrupt ({error}); {fix or self.remake(relative)}") from None

    def _save_parquet(self, relative: str, frame: pd.DataFrame) -> None:
        with atomic_writer(self.path / relative) as tmp:
            frame.to_parquet(tmp, index=False)

    def _read_parquet(self, relative: str) -> pd.DataFrame | None:
        path = self.path / relative
        if not path.exists():
            return None
        try:
            return pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for damaged files
            raise RunError(f"{path} is corrupt ({error}); {self.remake(relative)}") from None
