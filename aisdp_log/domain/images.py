"""Container image entries of an `Environment` cell: `image: NAME@sha256:<64 hex>`, the image a
run was trained in, pinned by its digest (a tag moves; the digest is the evidence).

    image_entries("image: ghcr.io/acme/train@sha256:4f...; python 3.11.2")
    # [ImageEntry(text='ghcr.io/acme/train@sha256:4f...', name='ghcr.io/acme/train', tag=None,
    #             digest='4f...', problem=None)]

Names follow the reference grammar Docker and Podman share: an optional registry host
(`localhost`, a name with a dot, or `host:port`), then lowercase path components; an optional
`:tag`; an optional `@sha256:<hex>`. `image=` is read too. What the checks make of an entry:
a problem is S013, no digest is G008 (`aisdp_log.lint.checks.images`)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

#: `image: REF` or `image=REF` (not `myimage:`), the reference up to a space, `;` or `,`.
IMAGE_ENTRY = re.compile(r"(?<![\w.-])image\s*[:=]\s*([^\s;,]*)", re.IGNORECASE)
#: A path component of a repository name (lowercase, separated by `.`, `_`, `__` or dashes).
COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
#: A registry host: `localhost`, `a.b`, either with a `:port`.
DOMAIN = re.compile(r"^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?$")
TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


@dataclass(frozen=True)
class ImageEntry:
    """One image entry: the reference as typed and its parts; `problem` says why it is
    malformed (None when it is well-formed)."""

    text: str
    name: str = ""
    tag: str | None = None
    digest: str | None = None  # 64 lowercase hex, without `sha256:`
    problem: str | None = None

    @property
    def pinned(self) -> str:
        """`NAME@sha256:<hex>`: the reference an engine runs (a tag beside a digest is
        ignored by both engines, so it is dropped)."""
        return f"{self.name}@sha256:{self.digest}"

    @property
    def cell_text(self) -> str:
        """The entry as the tool writes it in an `Environment` cell."""
        return f"image: {self.pinned}" if self.digest else f"image: {self.text}"


def image_entries(environment: str | None) -> list[ImageEntry]:
    """Every image entry of an Environment cell, in order (empty without one)."""
    return list(_entries(environment or ""))


def without_images(environment: str) -> str:
    """The cell text with its image entries blanked out (so a digest is not read as a lock
    file's hash)."""
    return IMAGE_ENTRY.sub(" ", environment) if "image" in environment.lower() else environment


@functools.lru_cache(maxsize=4096)
def _entries(environment: str) -> tuple[ImageEntry, ...]:
    if "image" not in environment.lower():
        return ()
    return tuple(parse_reference(match[1]) for match in IMAGE_ENTRY.finditer(environment))


def parse_reference(text: str) -> ImageEntry:
    """An image reference `[host[:port]/]path[:tag][@sha256:hex]` as an ImageEntry."""
    text = text.strip().strip("'\"`")
    if not text:
        return ImageEntry(text, problem="`image:` names no image; write "
                          "`image: NAME@sha256:<64 hex>`")
    rest, _, digest_text = text.partition("@")
    digest = None
    if "@" in text:
        match = DIGEST.match(digest_text)
        if match is None:
            return ImageEntry(text, problem=f"{digest_text or '(nothing)'} after `@` is not a "
                              "digest `sha256:<64 hex>`")
        digest = match[1].lower()
    tag = None
    last_slash = rest.rfind("/")
    if ":" in rest[last_slash + 1:]:
        rest, _, tag = rest.rpartition(":")
        if not TAG.match(tag):
            return ImageEntry(text, problem=f"{tag!r} is not a valid image tag")
    parts = rest.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not DOMAIN.match(parts[0]):
            return ImageEntry(text, problem=f"{parts[0]!r} is not a registry host")
        parts = parts[1:]
    for part in parts:
        if not COMPONENT.match(part):
            return ImageEntry(text, problem=f"{part or '(empty)'!r} is not a valid part of an "
                              "image name (lowercase letters, digits and . _ - between them)")
    return ImageEntry(text, name=rest, tag=tag, digest=digest)
