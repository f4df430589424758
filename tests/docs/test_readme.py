"""README.md's examples run, in the README's order, in an empty folder, so the README cannot rot.

Every fenced ``bash`` and ``python`` block runs unless the line before it is a marker
``<!-- readme-test: skip REASON -->`` (a template: it needs data, a GPU or a server); a skipped
block's ``dmlviz`` commands are still parsed, so a renamed flag fails here, and the test reports it
as skipped with its reason. A ``yaml`` block after ``<!-- readme-test: file NAME -->`` is written to
NAME for the commands after it. The examples run in one child process, one after the other as in
a shell; ``dmlviz`` commands run through ``dmlviz.cli.main`` (the console script's code, without a
new interpreter per command).

The costly examples take their sizes from shell variables with the real size as default
(``--epochs ${EPOCHS:-25}``); ``SIZES`` sets them small. With ``DMLVIZ_README_FULL=1`` the
variables stay unset and every example runs at its real size (minutes).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SIZES = {
    "EPOCHS": "1",
    "SEEDS": "0",
    "LOSSES": "rll",
    "NOISE": "0.4",
    "MAPS": "pca",
    "BUDGET": "2",
    "FOLDS": "2",
}
MARKER = re.compile(r"<!-- readme-test: (skip|file) (.+?) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
RUN = {"bash", "python"}
SHOWN = {"", "bibtex"}  # fenced blocks that are text to read (the layout tree, BibTeX), not code
VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")


@dataclass
class Block:
    line: int  # where the block's code starts in README.md
    lang: str
    code: str
    action: str  # "run", "skip" or "file"
    note: str  # the skip reason or the file name

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def readme_blocks() -> list[Block]:
    """The README's fenced blocks in order, with what the test does with each."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        lang, code = match[1], match[2]
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(before.strip())
        action, note = (marker[1], marker[2]) if marker else ("run", "")
        blocks.append(Block(text.count("\n", 0, match.start()) + 2, lang, code, action, note))
    return blocks


def shell_commands(code: str, sizes: dict[str, str]) -> list[list[str]]:
    """The commands of a bash block as argument lists: continuations joined, comments dropped,
    ``a && b`` split, ``${NAME:-default}`` replaced by ``sizes[NAME]`` or its default."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        line = VARIABLE.sub(lambda m: sizes.get(m[1], m[2]), line)
        for part in re.split(r"\s&&\s", line):
            argv = shlex.split(part, comments=True)
            if argv:
                commands.append(argv)
    return commands


def test_every_block_is_run_or_marked():
    """Nothing is left out silently: a block is run, written or skipped with a reason, or is
    plain text (the layout tree, BibTeX)."""
    for block in readme_blocks():
        if block.action == "skip":
            assert block.note.strip(), f"{block}: a skip marker needs a reason"
        elif block.action == "file":
            assert block.lang in ("yaml", "json"), f"{block}: only YAML/JSON blocks become files"
        else:
            assert block.lang in RUN | SHOWN, f"{block}: a {block.lang!r} block is neither run "
            "nor marked; add it to the test or mark it"


def run_examples(folder: Path, sizes: dict[str, str]) -> list[tuple[str, float]]:
    """Run the README's examples in order in ``folder``; returns (what, seconds) of each command
    and block. Raises AssertionError naming the first example that fails."""
    from dmlviz.cli import main

    os.environ.update(sizes)
    os.chdir(folder)
    timings = []
    for block in readme_blocks():
        started = time.perf_counter()
        if block.action == "file":
            (folder / block.note).write_text(block.code, encoding="utf-8")
        elif block.action == "skip" or block.lang not in RUN:
            continue
        elif block.lang == "python":
            exec(compile(block.code, str(block), "exec"), {"__name__": "__readme__"})
        else:
            for argv in shell_commands(block.code, sizes):
                assert argv[0] == "dmlviz", f"{block}: runs only dmlviz commands, not {argv[0]}"
                command_started = time.perf_counter()
                code = main(argv[1:])
                assert code == 0, f"{block}: `{shlex.join(argv)}` exited {code}"
                timings.append((shlex.join(argv), time.perf_counter() - command_started))
        timings.append((str(block), time.perf_counter() - started))
    return timings


@pytest.mark.slow
def test_readme_examples_run_in_order(tmp_path):
    """The examples run in one fresh process, as a user's shell would run them one after the other,
    with numba's JIT on as for a user (the test suite turns it off, which would make UMAP crawl)."""
    full = os.environ.get("DMLVIZ_README_FULL") == "1"
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_DISABLE_JIT"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    args = [sys.executable, __file__, str(tmp_path)] + ([] if full else ["--small"])
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    print(result.stdout[-6000:])  # each example's seconds (pytest -s shows them)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "README examples" in result.stdout


@pytest.mark.parametrize(
    "block", [b for b in readme_blocks() if b.action == "skip"], ids=lambda b: f"line{b.line}"
)
def test_template_commands_parse(block):
    """A template cannot run here, but its dmlviz commands must still parse (no renamed or
    removed flag); then it is reported as skipped, with the README's reason."""
    from dmlviz.cli import build_parser

    parser = build_parser()
    for argv in shell_commands(block.code, {}):
        if argv[0] == "dmlviz":
            parser.parse_args(argv[1:])
    pytest.skip(f"{block} not run: {block.note}")


def test_generated_tables_are_current():
    """README's --config table and docs/tuning.md's search spaces are what scripts/doc_tables.py
    generates from the registry."""
    spec = importlib.util.spec_from_file_location("doc_tables", ROOT / "scripts" / "doc_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run scripts/doc_tables.py --write"


if __name__ == "__main__":  # the child process of test_readme_examples_run_in_order
    small = "--small" in sys.argv
    sizes = SIZES if small else {}
    timings = run_examples(Path(sys.argv[1]), sizes)
    print("README examples" + (f" with {sizes}" if small else " at full size") + ":")
    for what, seconds in timings:
        print(f"  {seconds:7.1f} s  {what[:110]}")
    print(f"  {sum(s for w, s in timings if w.startswith('README.md')):7.1f} s  in all")
