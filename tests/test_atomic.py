"""Atomic replacement: whole file or nothing, the original's mode kept, no temp left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aisdp_log.system.atomic import atomic_replace, new_file_mode, write_bytes, write_new


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


# --------------------------------------------------------------------------- held by a program

def refusing_replace(monkeypatch, failures: int | None, winerror: int = 32) -> list[int]:
    """os.replace as Windows answers while another program holds the target (a sharing
    violation) for the first `failures` calls (None: always); returns the call count."""
    import aisdp_log.system.atomic as atomic

    real = os.replace
    calls = [0]

    def replace(source, target):
        calls[0] += 1
        if failures is None or calls[0] <= failures:
            error = PermissionError(13, "The process cannot access the file because it is "
                                        "being used by another process")
            error.winerror = winerror  # what Windows sets; POSIX never raises this
            raise error
        return real(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(atomic, "REPLACE_RETRY_S", 0.3)
    return calls


def test_a_replace_refused_while_another_program_holds_the_file_is_retried(tmp_path,
                                                                          monkeypatch):
    target = tmp_path / "log.xlsx"
    target.write_bytes(b"old")
    calls = refusing_replace(monkeypatch, failures=2)
    write_bytes(target, b"new")
    assert calls[0] == 3 and target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.xlsx"]


@pytest.mark.parametrize("owner, cause", [("~$log.xlsx", "open in Excel"),
                                          (".~lock.log.xlsx#", "open in LibreOffice"),
                                          (None, "a sync client (OneDrive, Dropbox")])
def test_a_file_held_past_the_retries_is_one_line_naming_the_holder(tmp_path, monkeypatch,
                                                                    owner, cause):
    from aisdp_log.errors import WriteFailed

    target = tmp_path / "log.xlsx"
    target.write_bytes(b"old")
    if owner:
        (tmp_path / owner).write_bytes(b"\x04ana ")
    refusing_replace(monkeypatch, failures=None)
    with pytest.raises(WriteFailed) as refused:
        write_bytes(target, b"new")
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"{target}: not written")
    assert cause in message and "the file is as it was" in message
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["log.xlsx", *([owner] if owner
                                                                               else [])])


def test_a_permission_refusal_on_posix_is_not_retried(tmp_path, monkeypatch):
    import aisdp_log.system.atomic as atomic
    from aisdp_log.errors import WriteFailed

    if os.name == "nt":
        pytest.skip("on Windows an access-denied replace is what a holding program causes")
    target = tmp_path / "log.xlsx"
    target.write_bytes(b"old")
    calls = [0]

    def replace(source, target):
        calls[0] += 1
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(WriteFailed, match="Permission denied"):
        write_bytes(target, b"new")
    assert calls[0] == 1


def test_write_new_writes_whole_files_and_never_overwrites(tmp_path):
    target = tmp_path / "2026-Q3.20261001T120000Z.json"
    write_new(target, b'{"period": "2026-Q3"}')
    assert target.read_bytes() == b'{"period": "2026-Q3"}'
    assert stat.S_IMODE(target.stat().st_mode) == new_file_mode()
    with pytest.raises(FileExistsError):
        write_new(target, b"forged")
    assert target.read_bytes() == b'{"period": "2026-Q3"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temp left


def test_a_signoff_record_sweeps_a_killed_signers_temp_and_keeps_earlier_records(tmp_path):
    from aisdp_log.signing.records import write_record

    folder = tmp_path / ".aisdp" / "signoffs"
    folder.mkdir(parents=True)
    dead = folder / ".2026-Q3.20261001T120000Z.json.999999999-abc123.tmp"  # no such pid
    dead.write_bytes(b'{"per')
    statement = {"period": "2026-Q3", "signed_at": "2026-10-01T12:00:00+00:00"}
    first = write_record(tmp_path, statement, '{"a": 1}', "SIG")
    second = write_record(tmp_path, statement, '{"a": 2}', "SIG2")
    assert not dead.exists()
    assert [p.suffix for p in first] == [".json", ".sig"]
    assert first[0].read_text() == '{"a": 1}' and second[0].read_text() == '{"a": 2}'
    assert first[0] != second[0]
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
