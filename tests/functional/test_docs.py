"""The documentation: the README stays a front page, and every link in it and in the site resolves.

The site is built as `make docs` builds it (MkDocs, strict, with link and anchor validation), through
MkDocs' own API; the README sits outside the site, so its relative links and their anchors are checked
here against the files and their headings, slugged as MkDocs slugs them."""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify
from mkdocs.commands.build import build
from mkdocs.config import load_config

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
FRONT_PAGE_LINES = 250


def test_the_site_builds_strictly_with_every_link_and_anchor_resolving(tmp_path):
    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    build(config)  # strict: a warning (a missing page, link or anchor) raises
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_the_readme_is_a_front_page():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= FRONT_PAGE_LINES


def test_every_relative_link_in_the_readme_reaches_a_file_and_its_heading():
    text = README.read_text(encoding="utf-8")
    relative = [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]
    assert relative, "the README links to its pages"
    for link in relative:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), link
        if anchor:
            headings = HEADING.findall(_without_code(target.read_text(encoding="utf-8")))
            assert anchor in {slugify(h, "-") for h in headings}, link


def _without_code(markdown: str) -> str:
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
