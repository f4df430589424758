"""Every ``docs/<name>.md`` that the repository cites exists in it, with the section it names.

A citation like ``docs/rll.md 1.8`` or ``docs/contextual.md`` §1 must point at a file of the repo's own
``docs/`` (not ``../shared``) holding a heading numbered that way, so a plain clone is complete.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("benchmarks", "dashboard", "dmlviz", "docs", "notebooks", "scripts", "tests")
SUFFIXES = {".py", ".json", ".md", ".toml", ".sh", ".yaml", ".yml"}
# docs/<name>.md, then optionally a section: "§1", "§ 1.2" or a bare "1.8", after `` or a space.
CITATION = re.compile(r"(?<![\w./-])docs/([\w-]+\.md)`{0,2}(?: ?§ ?| )?(\d+(?:\.\d+)*)?")


def cited_files() -> list[Path]:
    """The repository's text files that may cite a doc: top-level files and the source folders."""
    files = [path for path in ROOT.iterdir() if path.is_file()]
    files += [path for folder in FOLDERS for path in (ROOT / folder).rglob("*") if path.is_file()]
    return sorted(path for path in files if path.suffix in SUFFIXES or path.name == "Makefile")


def citations() -> list[tuple[str, str, str | None]]:
    """(citing file, cited doc, cited section or None) for every citation in the repository."""
    found = []
    for path in cited_files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.append((str(path.relative_to(ROOT)), match[1], match[2]))
    return found


def test_the_loss_docs_are_cited():
    cited = {doc for _, doc, _ in citations()}
    assert {"contextual.md", "rll.md", "run-format.md"} <= cited


@pytest.mark.parametrize(("source", "doc", "section"), citations())
def test_cited_doc_and_section_exist(source, doc, section):
    path = ROOT / "docs" / doc
    assert path.is_file(), f"{source} cites docs/{doc}, which is not in the repository"
    if section:
        headings = re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", path.read_text(encoding="utf-8"), re.M)
        assert section in headings, f"{source} cites docs/{doc} section {section}, which it lacks"
