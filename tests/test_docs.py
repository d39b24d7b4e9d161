"""The documentation stays short, linked and about the toolkit.

- README.md is at most 250 lines; the rest lives in pages under docs/ (at least 3).
- Every relative link and image in README.md, CHANGELOG.md, configs/README.md and docs/*.md points at a file
  that exists; a `#anchor` into a Markdown file names one of its headings (GitHub's slug rule).
- README.md and docs/*.md do not speak of how the project was developed ("issue 12", "the refactor", ...);
  CHANGELOG.md is where results that changed over time go, so it is exempt.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
MIN_DOC_PAGES = 3

# Phrases that describe the making of the project rather than the toolkit (case-insensitive).
HISTORY_PATTERNS = (
    r"\bissues? #?\d+",
    r"\bthe refactor",
    r"\bre-?measured at the end",
    r"\bat the end of (this|the last|a) (session|round)",
    r"\bthis session\b",
    r"\bprevious session\b",
    r"\bround of work\b",
    r"\b(before|after) the [\w\s-]{0,40}\bcheck\b",
    r"\bearlier README\b",
    r"\bnot re-?measured\b",
)

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the target ends at whitespace or ')' (an optional "title" is ignored).
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _strip_code(text: str) -> str:
    """Markdown text without fenced blocks and inline code spans (links and headings there are not real)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Targets of the Markdown links and images in `text`, outside code."""
    return LINK.findall(_strip_code(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not '-' or '_'), spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps only its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor GitHub makes for the headings of `text` (repeated headings get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(_strip_code(text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Each relative link of the Markdown file `path` whose file or anchor does not exist, with the reason."""
    text = path.read_text(encoding="utf-8")
    problems = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target}: no file {dest}")
            continue
        if anchor and dest.is_file() and dest.suffix == ".md":
            if anchor not in anchors(dest.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return problems


def doc_pages() -> list[Path]:
    return sorted((ROOT / "docs").glob("*.md"))


def checked_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "configs" / "README.md", *doc_pages()]


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines, at most {README_MAX_LINES}: move detail to docs/"


def test_docs_has_pages():
    pages = doc_pages()
    assert len(pages) >= MIN_DOC_PAGES, f"docs/ holds {len(pages)} pages, expected at least {MIN_DOC_PAGES}"


@pytest.mark.parametrize("path", checked_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert path.exists(), f"{path} is missing"
    assert broken_links(path) == []


@pytest.mark.parametrize("path", [ROOT / "README.md", *doc_pages()], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_words_about_how_the_project_was_made(path):
    text = path.read_text(encoding="utf-8")
    hits = []
    for pattern in HISTORY_PATTERNS:
        for m in re.finditer(pattern, text, re.I):
            line = text.count("\n", 0, m.start()) + 1
            hits.append(f"{path.name}:{line}: {m.group(0)!r} (pattern {pattern})")
    assert hits == [], "history belongs in CHANGELOG.md:\n" + "\n".join(hits)


def test_readme_links_every_doc_page():
    readme = set(links((ROOT / "README.md").read_text(encoding="utf-8")))
    missing = [p.name for p in doc_pages() if f"docs/{p.name}" not in {t.partition("#")[0] for t in readme}]
    assert missing == [], f"README.md does not link these pages: {missing}"


# The checker itself: it must find what it is meant to find.


def test_links_found_outside_code_only():
    text = 'See [a](docs/a.md) and ![img](images/x.png "t").\n`[no](b.md)`\n```\n[no](c.md)\n```\n[web](https://x.org)'
    assert links(text) == ["docs/a.md", "images/x.png", "https://x.org"]


def test_slug_follows_github():
    assert slug("Two-corners experiment (Fig. 2)") == "two-corners-experiment-fig-2"
    assert slug("Several study app processes, one PostgreSQL") == "several-study-app-processes-one-postgresql"
    assert slug("The `quick` profile") == "the-quick-profile"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_broken_link_and_anchor_detected(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n## Part one\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#part-one) [self](#here) [gone](missing.md) [bad](other.md#part-two)\n## Here\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 2
    assert problems[0].startswith("missing.md: no file")
    assert problems[1].startswith("other.md#part-two: no heading")


def test_history_patterns_catch_examples():
    examples = [
        "fixed in issue 15",
        "the refactor changed no number",
        "re-measured at the end of the round",
        "measured this session",
        "after the last round of work",
        "before the exact-decision check",
    ]
    for example in examples:
        assert any(re.search(p, example, re.I) for p in HISTORY_PATTERNS), example
    assert not any(re.search(p, "Device check before consent", re.I) for p in HISTORY_PATTERNS)
