"""The docs' generated tables, each kept between two markers in its doc, so no doc restates a fact
of the registry by hand:

* README.md's ``config-keys``: every training setting (``dmlviz.registry.settings.SETTINGS``): its
  flag, its default for digits and for the photo datasets (``dmlviz.registry.datasets``), whether
  ``--resume`` may change it, and its help line;
* docs/tuning.md's ``search-spaces``: each loss's search space and paper defaults
  (``dmlviz.registry.losses.search_table``).

Usage: ``.venv/bin/python scripts/doc_tables.py [--write | --check]``. Without an option the tables
are printed; ``--write`` puts each into its doc between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``, ``--check`` exits 1 when a doc's copy is stale (``tests/docs`` runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO_SET = "cub200"  # the photo datasets (cub200, cars196, sop, inshop) share their defaults
# Keys whose default depends on the machine that imports the config, written as the rule instead.
MACHINE_DEPENDENT = {"num_workers": "min(4, CPU cores)"}


def config_keys_table() -> str:
    """The Markdown table of every config key."""
    from dmlviz.registry.datasets import DATASET_ENTRIES
    from dmlviz.registry.settings import SETTINGS

    base = {setting.key: setting.default for setting in SETTINGS}
    digits = {**base, **DATASET_ENTRIES["digits"].defaults}
    photos = {**base, **DATASET_ENTRIES[PHOTO_SET].defaults}
    lines = [
        "| key | flag | digits default | photo sets default | on `--resume` | what it sets |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        key, flag = setting.key, setting.cli_flag
        photo = MACHINE_DEPENDENT.get(key, _value(photos[key]))
        lines.append(
            f"| `{key}` | {f'`{flag}`' if flag else '-'} | {_value(digits[key])} | "
            f"{photo if photos[key] != digits[key] else 'same'} | "
            f"{'may change' if setting.resumable else 'fixed'} | {_escape(setting.help_text())} |"
        )
    return "\n".join(lines)


def search_spaces_table() -> str:
    """The Markdown table of each loss's search space and paper defaults."""
    from dmlviz.registry.losses import search_table

    return search_table()


# marker name: (the doc holding the table, what makes it)
TABLES: dict[str, tuple[Path, Callable[[], str]]] = {
    "config-keys": (ROOT / "README.md", config_keys_table),
    "search-spaces": (ROOT / "docs" / "tuning.md", search_spaces_table),
}


def _value(value) -> str:
    if value is None:
        return "null"
    return f"`{json.dumps(value)}`"


def _escape(text: str) -> str:
    """Help text as one table cell: pipes escaped, <placeholders> kept visible (not HTML tags)."""
    text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def markers(name: str) -> tuple[str, str]:
    """The comments around table ``name`` in its doc."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def doc_block(text: str, name: str) -> str:
    """The part of ``text`` between table ``name``'s markers (ValueError when they are missing)."""
    start, end = markers(name)
    if start not in text or end not in text:
        raise ValueError(f"the doc lacks the markers {start} and {end}")
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def stale_tables() -> list[str]:
    """The names of the tables whose doc holds another copy than the one generated now."""
    return [
        name
        for name, (doc, make) in TABLES.items()
        if doc_block(doc.read_text(encoding="utf-8"), name) != make()
    ]


def write_table(name: str) -> None:
    """Put table ``name``, generated now, into its doc between its markers."""
    doc, make = TABLES[name]
    start, end = markers(name)
    before, rest = doc.read_text(encoding="utf-8").split(start, 1)
    after = rest.split(end, 1)[1]
    temp = doc.with_name(f".{doc.name}.tmp")
    temp.write_text(f"{before}{start}\n{make()}\n{end}{after}", encoding="utf-8")
    temp.replace(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update the docs' tables")
    group.add_argument("--check", action="store_true", help="exit 1 when a doc's table is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_tables()
        for name in stale:
            print(f"{TABLES[name][0].name}'s {name} table is stale: run scripts/doc_tables.py "
                  "--write", file=sys.stderr)  # fmt: skip
        return 1 if stale else 0
    for name, (_, make) in TABLES.items():
        if args.write:
            write_table(name)
        else:
            print(f"{name}:\n{make()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
