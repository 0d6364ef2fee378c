"""Artefact folders: `<artefacts>/<Experiment ID>/`, and the rule that keeps an ID (cell text)
from naming anything outside the artefacts root."""

from __future__ import annotations

from pathlib import Path

from aisdp_log.errors import WriteRefused


def plain_folder_name(text: str) -> bool:
    """Whether `text` names one folder inside another: not empty, `.` or `..`, no separator or
    NUL, no surrounding white space. (Symlinks are the caller's to check after resolving.)"""
    return bool(text) and text not in (".", "..") and not any(ch in text for ch in "/\\\0") \
        and text == text.strip()


def artefact_folder(artefacts_root: Path, experiment_id: str) -> Path:
    """`<artefacts>/<ID>`, refusing an ID that is not a plain folder name or whose folder
    (after symlinks) lies outside the artefacts root."""
    if not plain_folder_name(experiment_id):
        raise WriteRefused(f"experiment ID {experiment_id!r} is not a plain folder name")
    root = artefacts_root.resolve()
    folder = (artefacts_root / experiment_id).resolve()
    if folder.parent != root:
        raise WriteRefused(f"experiment ID {experiment_id!r}: its artefact folder leads outside "
                           f"{artefacts_root}")
    return folder
