"""The product's docs stand alone: nothing in README.md, docs/*.md or notebooks/README.md points
outside the repository or leaves a number marked unchecked, and every relative link and picture
they hold is a file of the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "notebooks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# What a reader outside the project cannot follow: its sibling folders, its work notes.
OUTSIDE = re.compile(
    r"\.\./shared|\[unverified|from memory|the issue (asked|says)|issue \d+", re.IGNORECASE
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_doc_points_inside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    found = [
        f"line {text.count(chr(10), 0, m.start()) + 1}: {m[0]}" for m in OUTSIDE.finditer(text)
    ]
    assert not found, f"{doc.name} points outside the repository: {found}"
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{doc.name} links to {target}, which is not in the repository"
        assert ROOT in path.parents, f"{doc.name} links outside the repository: {target}"


def test_readme_pictures_are_small():
    """The README's screenshots stay small enough to commit and to load on a code host."""
    pictures = sorted((ROOT / "docs" / "images").glob("*.png"))
    assert len(pictures) >= 5
    assert sum(path.stat().st_size for path in pictures) < 1.5e6
