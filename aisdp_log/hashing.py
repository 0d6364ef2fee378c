"""The SPEC's artefact hash: streaming sha256 of one file, or a sha256sum-style manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Files in an artefact folder that are records about the model, not the model.
RECORD_FILES = frozenset({"run.json", "metrics.json", "history.csv"})
RECORD_DIRS = frozenset({"reruns"})


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed (hashlib.file_digest where available)."""
    with open(path, "rb") as fh:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(fh, "sha256").hexdigest()
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        return digest.hexdigest()


def model_files(folder: Path) -> list[Path]:
    """The model artefact: every regular file under `folder` except the records, sorted by
    their path relative to the folder (with `/`)."""
    files = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if rel.parts[0] in RECORD_DIRS or (len(rel.parts) == 1 and rel.name in RECORD_FILES):
            continue
        if path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def manifest_hash(entries: list[tuple[str, str]]) -> str:
    """sha256 of `<hex>  <relpath>\\n` lines sorted by path: what `sha256sum` prints."""
    text = "".join(f"{hex_digest}  {rel}\n" for hex_digest, rel in
                   sorted(entries, key=lambda e: e[1]))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def artefact_hash(path: Path | str, digest=file_sha256) -> str:
    """`sha256:<hex>` as the `Artefact hash` cell wants it, for a file or an artefact folder.

    Raises FileNotFoundError when a folder holds no model file."""
    path = Path(path)
    if path.is_file():
        return "sha256:" + digest(path)
    files = model_files(path)
    if not files:
        raise FileNotFoundError(f"{path}: no model file (only run.json, metrics.json, "
                                "history.csv or reruns/)")
    if len(files) == 1:
        return "sha256:" + digest(files[0])
    return "sha256:" + manifest_hash([(digest(f), f.relative_to(path).as_posix())
                                      for f in files])
