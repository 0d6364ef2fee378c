"""Lock files an `Environment` cell names with their sha256, in any common spelling: what the
git checks (G005, G007), the coverage count, the review and the bundle read from the cell.
Image entries (`image: NAME@sha256:<hex>`) are not lock files: `domain/images.py` reads them."""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re

from aisdp_log.domain.images import without_images

#: An Environment cell's words: split at spaces, `;` and `,` (a lock entry never holds them).
WORD = re.compile(r"[^\s;,]+")
#: `sha256:` inside a word, and the hex a lock hash is made of (8+ compares as a prefix).
SHA256_MARK = re.compile(r"sha256:", re.IGNORECASE)
LOCK_HEX = re.compile(r"^[0-9a-fA-F]{8,64}$")
#: Names without a dot that still are files worth pinning.
DOTLESS_FILES = frozenset({"Dockerfile", "Containerfile", "Pipfile", "Gemfile", "Makefile"})


def lock_entries(environment: str) -> list[tuple[str, str]]:
    """(path, hex) for each lock file an Environment cell ties to a sha256 (see
    `read_lock_entries`)."""
    return read_lock_entries(environment)[0]


def read_lock_entries(environment: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The lock files an Environment cell names, in any common spelling: `path sha256:hex`
    (what the tool writes), `path: sha256:hex`, `path=sha256:hex`, `sha256:hex path`.

    Returns ((path, lowercase hex) per entry, the `sha256:` words no file could be tied to).
    Words are paired left to right, each file with one hash, a file before its hash first."""
    entries, unplaced = _parse(environment)
    return list(entries), list(unplaced)


@functools.lru_cache(maxsize=4096)
def _parse(environment: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    # A validation asks up to three times per row (G005, G007, the coverage count), and the
    # rows of a log mostly share one cell text: each text is parsed once. An image entry's
    # digest (`image: NAME@sha256:...`) is no lock file's hash: domain/images.py reads it.
    words = WORD.findall(without_images(environment))
    marks = [SHA256_MARK.search(word) for word in words]
    used: set[int] = set()
    entries: list[tuple[str, str]] = []
    unplaced: list[str] = []
    for index, (word, mark) in enumerate(zip(words, marks)):
        if mark is None:
            continue
        digest = word[mark.end():].strip(")]}'\".")
        before = word[:mark.start()].lstrip("([{'\"")
        path = None
        if before:  # `path=sha256:hex`, `path:sha256:hex`, or an image's `name@sha256:hex`
            if before[-1] in ":=" and _is_file(before[:-1]):
                path = before[:-1]
        else:
            previous = index - 1
            if previous >= 0 and words[previous] in (":", "="):
                previous -= 1
            if previous >= 0 and previous not in used and marks[previous] is None and \
                    _is_file(_bare(words[previous])):
                path = _bare(words[previous])
                used.add(previous)
            elif index + 1 < len(words) and marks[index + 1] is None and \
                    _is_file(_bare(words[index + 1])) and not words[index + 1].endswith(
                        (":", "=")):
                path = _bare(words[index + 1])
                used.add(index + 1)
        if path is None or not LOCK_HEX.match(digest):
            unplaced.append(word)
        else:
            entries.append((path.rstrip("/"), digest.lower()))
    return tuple(entries), tuple(unplaced)


def _bare(word: str) -> str:
    """A word without the `:` or `=` that ties it to a hash, nor quotes or brackets."""
    return word.strip("([{'\")]}").removesuffix(":").removesuffix("=")


def _is_file(name: str) -> bool:
    """Whether a word names a file: a path with a dot or slash, or a known dotless file; not
    an image reference or a pin such as `torch==2.1`."""
    name = name.rstrip("/")
    if not name or "@" in name or ":" in name or "=" in name:
        return False
    return "." in name or "/" in name or name in DOTLESS_FILES


def lock_repo_path(path: str, prefix: str) -> str | None:
    """A lock path from a cell as a path from the repository root (`prefix`: where paths in
    the config are relative to); None if it escapes the repository."""
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return None
    joined = posixpath.normpath(posixpath.join(prefix, path.replace("\\", "/")))
    if joined == ".." or joined.startswith("../") or joined == ".":
        return None
    return joined


def lock_matches(blob: bytes, digest: str) -> bool:
    """Whether a lock file's bytes at a commit have the sha256 (or its 8+ hex prefix) a cell
    records. A Windows checkout (core.autocrlf) hashes the CRLF file the user sees, so that
    spelling of an LF file counts too."""
    if hashlib.sha256(blob).hexdigest().startswith(digest):
        return True
    return b"\n" in blob and b"\r\n" not in blob and hashlib.sha256(
        blob.replace(b"\n", b"\r\n")).hexdigest().startswith(digest)
