"""The README's table of ``--config`` keys, generated from the training config's one schema.

Usage: ``.venv/bin/python scripts/config_keys.py [--write | --check]``

Every key of ``dmlviz.train.config.BASE_CONFIG`` gets a row: its command-line flag and help text
(``dmlviz.cli.train.OPTIONS``), its default for digits and for the photo datasets
(``DATASET_DEFAULTS``) and whether ``--resume`` may change it (``RESUMABLE_CHANGES``). Without an
option the table is printed; ``--write`` puts it into README.md between the two ``config-keys``
markers, ``--check`` exits 1 when README.md's copy is stale (``tests/docs/test_readme.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- config-keys:start -->", "<!-- config-keys:end -->"
PHOTO_SET = "cub200"  # the photo datasets (cub200, cars196, sop, inshop) share their defaults
# Keys whose default depends on the machine that imports the config, written as the rule instead.
MACHINE_DEPENDENT = {"num_workers": "min(4, CPU cores)"}
# Keys the flags do not set one by one.
NO_FLAG = {"preset_source": "set by `--preset` (`tuned` or `paper`) and by giving `lr` or "
           "`loss_kwargs` yourself (`user settings`)"}  # fmt: skip


def table() -> str:
    """The Markdown table of every config key."""
    from dmlviz.cli.train import OPTIONS
    from dmlviz.train.config import BASE_CONFIG, DATASET_DEFAULTS, RESUMABLE_CHANGES

    flags = {key: (flag, kwargs.get("help", "")) for flag, key, kwargs in OPTIONS}
    flags.setdefault("recipe", ("--recipe", "a paper's training recipe (docs/recipes.md)"))
    comments = _comments()
    digits = {**BASE_CONFIG, **DATASET_DEFAULTS["digits"]}
    photos = {**BASE_CONFIG, **DATASET_DEFAULTS[PHOTO_SET]}
    lines = [
        "| key | flag | digits default | photo sets default | on `--resume` | what it sets |",
        "|---|---|---|---|---|---|",
    ]
    for key in BASE_CONFIG:
        flag, meaning = flags.get(key, ("", NO_FLAG.get(key) or comments.get(key, "")))
        photo = MACHINE_DEPENDENT.get(key, _value(photos[key])) if key in photos else ""
        lines.append(
            f"| `{key}` | {f'`{flag}`' if flag else '-'} | {_value(digits[key])} | "
            f"{photo if photos[key] != digits[key] else 'same'} | "
            f"{'may change' if key in RESUMABLE_CHANGES else 'fixed'} | {_escape(meaning)} |"
        )
    return "\n".join(lines)


def _comments() -> dict[str, str]:
    """The comment beside each key in BASE_CONFIG's source: what a key without a flag means."""
    import re

    from dmlviz.train import config

    source = Path(config.__file__).read_text(encoding="utf-8")
    body = source.split("BASE_CONFIG", 1)[1].split("\n}\n", 1)[0]
    return dict(re.findall(r'^\s+"(\w+)": .*?,\s+# (.+)$', body, re.M))


def _value(value) -> str:
    if value is None:
        return "null"
    return f"`{json.dumps(value)}`"


def _escape(text: str) -> str:
    """Help text as one table cell: pipes escaped, <placeholders> kept visible (not HTML tags)."""
    text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def readme_block(text: str) -> str:
    """The part of ``text`` between the markers (raises ValueError when they are missing)."""
    if START not in text or END not in text:
        raise ValueError(f"README.md lacks the markers {START} and {END}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update README.md's table")
    group.add_argument("--check", action="store_true", help="exit 1 when README.md's is stale")
    args = parser.parse_args(argv)
    generated = table()
    if not (args.write or args.check):
        print(generated)
        return 0
    text = README.read_text(encoding="utf-8")
    if args.check:
        if readme_block(text) != generated:
            print("README.md's config keys are stale: run scripts/config_keys.py --write",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    temp = README.with_name(".README.md.tmp")
    temp.write_text(f"{before}{START}\n{generated}\n{END}{after}", encoding="utf-8")
    temp.replace(README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
