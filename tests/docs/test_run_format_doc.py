"""docs/run-format.md's table of config.json keys explains the keys the settings registry declares
(``dmlviz.registry.settings``), with the digits defaults it declares: a new or renamed setting, or
a changed default, fails here until the doc says so."""

import json
import re
from pathlib import Path

from dmlviz.registry.datasets import DATASET_ENTRIES
from dmlviz.registry.settings import SETTINGS
from dmlviz.train.config import RECORDED_KEYS

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-format.md"


def config_rows() -> list[tuple[list[str], str]]:
    """(the keys a row names, its default cell) for each row of the doc's config.json table."""
    section = DOC.read_text(encoding="utf-8").split("## config.json", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (`[^|]+`) \| ([^|]+) \|", section, re.M)
    return [(re.findall(r"`(\w+)`", keys), default.strip()) for keys, default in rows]


def literal(cell: str) -> tuple[bool, object]:
    """``(True, value)`` for a cell that is a value (``mlp`` in backticks, ``0``, ``null``),
    ``(False, None)`` for words that explain one ("required", "the folder name")."""
    if cell.startswith("`"):
        text = cell.strip("`")
        try:
            return True, json.loads(text)
        except json.JSONDecodeError:
            return True, text
    try:
        return True, json.loads(cell)
    except json.JSONDecodeError:
        return False, None


def test_every_setting_has_a_row_and_no_row_names_an_unknown_key():
    named = {key for keys, _ in config_rows() for key in keys}
    settings = {setting.key for setting in SETTINGS}
    assert settings - named == set(), "docs/run-format.md lacks these config.json keys"
    assert named - settings - set(RECORDED_KEYS) == set(), "docs/run-format.md names unknown keys"


def test_the_digits_defaults_are_the_registered_ones():
    digits = {s.key: s.default for s in SETTINGS} | DATASET_ENTRIES["digits"].defaults
    for keys, cell in config_rows():
        cells = [part.strip() for part in cell.split(",")]
        if len(cells) != len(keys):
            continue  # "null, then the data's": words, not one value per key
        for key, part in zip(keys, cells, strict=True):
            is_value, value = literal(part)
            if is_value and key in digits:
                assert value == digits[key], f"docs/run-format.md: {key} defaults to {value!r}"


def test_the_keys_a_resume_may_change_are_the_registered_ones():
    text = DOC.read_text(encoding="utf-8")
    sentence = text.split("On `--resume`, only", 1)[1].split("may change", 1)[0]
    named = set(re.findall(r"`(\w+)`", sentence))
    assert named == {setting.key for setting in SETTINGS if setting.resumable}
