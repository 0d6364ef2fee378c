"""The documentation stays true: its links resolve, nothing cites a document the repository
lacks, the format reference's generated tables equal the code's, and the architecture page
names every room."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from aisdp_log.lint.catalogue import README_BLOCKS, render_codes, sync_readme

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FORMAT = DOCS / "workbook-format.md"
ARCHITECTURE = DOCS / "architecture.md"
#: The Markdown a reader follows links in.
LINKED = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: Where a citation of a document must name one the repository holds.
CITING = ("aisdp_log", "tests", "benchmarks", "tools", "docs")
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".yaml", ".yml", ".sh", ".cfg", ".ini"}
#: Markdown files aisdp-log writes for its users (the bundle's VERIFY.md, review-<period>.md):
#: outputs, not documents of this repository.
OUTPUT_DOCUMENTS = re.compile(r"VERIFY\.md|review-[\w-]*\.md")
#: Documents of the development process that live outside the repository; cited bare ("the
#: SPEC's shape") as well as by file name. Citing one is fine only once it is in the repository.
OUTSIDE_DOCUMENTS = ("SPEC", "FACTS", "STYLE")

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
MARKDOWN_NAME = re.compile(r"(?<![\w./-])([\w][\w./-]*\.md)\b(?!\.)")  # not `x.md.j2`


def _prose(text: str) -> str:
    """Markdown without its code: links inside code blocks or spans are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text(encoding="utf-8")))


def test_the_documentation_exists():
    assert FORMAT.is_file() and ARCHITECTURE.is_file()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (FORMAT, ARCHITECTURE):
        assert f"]({page.relative_to(ROOT).as_posix()}" in readme, f"README links {page.name}"


@pytest.mark.parametrize("page", LINKED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_a_file_in_the_repository(page):
    broken = []
    for target in _links(page):
        if SCHEME.match(target):
            continue  # https:, mailto:: not a file of ours
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if ROOT != linked and ROOT not in linked.parents or not linked.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: {linked.name} has no heading with that anchor")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def _citing_files() -> list[Path]:
    files = []
    for folder in CITING:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts \
                    and path != Path(__file__).resolve():  # this file names what must not be cited
                files.append(path)
    return files


def _python_names(source: str) -> set[str]:
    """The names a Python file uses in its code (not in comments or strings)."""
    try:
        return {token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.NAME}
    except (tokenize.TokenError, SyntaxError):
        return set()


def _documents() -> set[str]:
    """Names and repository paths of the Markdown documents the repository holds."""
    names = set()
    for path in ROOT.rglob("*.md"):
        if ".git" not in path.relative_to(ROOT).parts:
            names.add(path.name)
            names.add(path.relative_to(ROOT).as_posix())
    return names


def test_nothing_cites_a_document_the_repository_lacks():
    documents = _documents()
    bare = [name for name in OUTSIDE_DOCUMENTS if f"{name}.md" not in documents]
    bare_word = re.compile(rf"\b({'|'.join(bare)})\b(?!\.md)") if bare else None
    missing = []
    for path in _citing_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        # a Python name (a constant such as STYLE) is code, not a citation
        names = _python_names(text) if path.suffix == ".py" else set()
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{path.relative_to(ROOT).as_posix()}:{number}"
            for name in MARKDOWN_NAME.findall(line):
                if OUTPUT_DOCUMENTS.fullmatch(Path(name).name):
                    continue
                if name not in documents and Path(name).name not in documents:
                    missing.append(f"{where}: {name}")
            if bare_word is not None:
                missing += [f"{where}: {word}" for word in bare_word.findall(line)
                            if word not in names]
    assert not missing, "cites a document not in the repository:\n" + "\n".join(missing)


def _block(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", text, re.S)
    assert match, f"{FORMAT.name} lacks the generated block {name!r}"
    return match[1]


def test_the_code_table_is_the_catalogue():
    # Regenerate with: python -m aisdp_log.lint.catalogue docs/workbook-format.md
    assert _block(FORMAT.read_text(encoding="utf-8"), "codes") == render_codes("markdown")


def test_every_generated_block_of_the_format_reference_is_current():
    text = FORMAT.read_text(encoding="utf-8")
    for name in README_BLOCKS:
        _block(text, name)
    assert sync_readme(text) == text


def test_the_architecture_page_names_every_room():
    rooms = sorted(path.parent.name for path in (ROOT / "aisdp_log").glob("*/__init__.py"))
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert [room for room in rooms if f"`{room}/`" not in text] == []
