"""The docs (issue 14): the generated reference pages are current, every config key has a
sentence, and no link in the README or docs/ is dead (files and #anchors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge_dev import docs

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("rel", sorted(docs.PAGES))
def test_generated_page_is_current(rel: str) -> None:
    assert (ROOT / rel).read_text() == docs.PAGES[rel](), f"{rel} is out of date: python -m bridge_dev.docs"


def test_every_config_key_is_described() -> None:
    assert docs.missing_descriptions() == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_dead_links(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    dead = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            dead.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target}: no heading #{anchor} in {file.name}")
    assert dead == [], f"{page.relative_to(ROOT)}: dead links {dead}"


def test_slug_matches_github() -> None:
    assert (
        slug("Scope of practice and privacy (`bridge/roles`)") == "scope-of-practice-and-privacy-bridgeroles"
    )
    assert slug("EHR endpoints and SMART registration") == "ehr-endpoints-and-smart-registration"
