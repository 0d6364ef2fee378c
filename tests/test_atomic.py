"""Atomic replacement: whole file or nothing, the original's mode kept, no temp left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aisdp_log.system.atomic import atomic_replace, new_file_mode, write_bytes


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_the_content_and_keeps_the_mode(tmp_path: Path):
    target = tmp_path / "log.xlsx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert mode_of(target) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.xlsx"]


def test_a_new_file_gets_the_mode_open_would_give_not_mkstemps_0600(tmp_path: Path):
    target = tmp_path / "run.json"
    previous = os.umask(0o022)
    try:
        assert new_file_mode() == 0o644
        write_bytes(target, b"{}")
    finally:
        os.umask(previous)
    assert mode_of(target) == 0o644


def test_an_explicit_mode_wins(tmp_path: Path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"x")
    target.chmod(0o600)
    write_bytes(target, b"y", mode=0o644)
    assert mode_of(target) == 0o644


def test_an_exception_leaves_the_original_and_no_temp_file(tmp_path: Path):
    target = tmp_path / "log.xlsx"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError):
        with atomic_replace(target, suffix=".aisdp-tmp") as temp:
            temp.write_bytes(b"half")
            assert temp.parent == tmp_path and temp.name.endswith(".aisdp-tmp")
            raise RuntimeError("refused")
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.xlsx"]
