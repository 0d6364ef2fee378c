"""The artefact hash, checked against coreutils `sha256sum`, and `aisdp-log hash`."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from builders import init_repo, run_cli

from aisdp_log.artefacts.digests import (
    ArtefactError,
    NoModelFile,
    file_sha256,
    model_files,
    scan_folder,
)
from aisdp_log.artefacts.hashing import artefact_hash, hash_for_cell


def sha256sum(folder: Path, rels: list[str]) -> str:
    """What docs/workbook-format.md says the hash is, computed by coreutils: `sha256sum`
    lines for the files sorted by path, hashed again."""
    lines = subprocess.run(["sha256sum", "--", *sorted(rels)], cwd=folder, check=True,
                           capture_output=True).stdout
    return subprocess.run(["sha256sum"], input=lines, check=True,
                          capture_output=True).stdout.split()[0].decode()


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def cli(*args: str, cwd: Path | None = None):
    return run_cli(*args, cwd=cwd)


def test_file_hash_equals_sha256sum(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(os.urandom(3 << 20))  # several read blocks
    expected = subprocess.run(["sha256sum", str(path)], capture_output=True,
                              text=True).stdout.split()[0]
    assert file_sha256(path) == expected
    assert artefact_hash(path) == "sha256:" + expected


def test_single_file_folder_is_the_file_hash(tmp_path):
    folder = write(tmp_path / "EXP-001", {"model.pt": b"weights", "run.json": b"{}",
                                          "metrics.json": b"{}", "history.csv": b"epoch\n"})
    assert artefact_hash(folder) == "sha256:" + file_sha256(folder / "model.pt")


def test_several_files_hash_the_sha256sum_listing(tmp_path):
    files = {"model.pt": b"w", "b/deeper/x.bin": b"x" * 5000, "B.txt": b"upper",
             "a b.txt": b"space", "sub/run.json": b"nested records are model files"}
    folder = write(tmp_path / "EXP-001", {**files, "run.json": b"{}",
                                          "reruns/1/model.pt": b"rerun"})
    assert artefact_hash(folder) == "sha256:" + sha256sum(folder, list(files))
    assert [p.relative_to(folder).as_posix() for p in model_files(folder)] == sorted(files)


def test_progress_callback_counts_every_byte(tmp_path):
    folder = write(tmp_path / "EXP-001", {"a.bin": os.urandom(700_000), "b.bin": b"b" * 10})
    seen = []
    artefact_hash(folder, on_bytes=seen.append)
    assert sum(seen) == 700_010


def test_symlink_leaving_the_root_is_refused(tmp_path):
    (tmp_path / "secret").write_bytes(b"secret")
    folder = write(tmp_path / "artefacts" / "EXP-001", {"model.pt": b"w"})
    (folder / "leak.bin").symlink_to(tmp_path / "secret")
    scan = scan_folder(folder, tmp_path / "artefacts")
    assert scan.escapes == ["leak.bin"] and [f.rel for f in scan.files] == ["model.pt"]
    with pytest.raises(ArtefactError):
        artefact_hash(folder)


def test_symlinks_inside_the_root_are_followed_and_loops_end(tmp_path):
    root = tmp_path / "artefacts"
    write(root / "EXP-001", {"model.pt": b"w"})
    folder = write(root / "EXP-002", {"head.pt": b"h"})
    (folder / "model.pt").symlink_to("../EXP-001/model.pt")
    (folder / "loop").symlink_to(".", target_is_directory=True)
    (folder / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(folder / "fifo")  # would block a reader forever: skipped
    assert artefact_hash(folder) == "sha256:" + sha256sum(folder, ["head.pt", "model.pt"])


def test_folders_linking_to_each_other_finish_without_following_the_loop(tmp_path):
    # Two links each way once made the walk exponential (a hang); the loop is not followed.
    root = tmp_path / "artefacts"
    first = write(root / "A", {"m.bin": b"m"})
    second = write(root / "B", {"n.bin": b"n"})
    for name in ("toB", "toB2"):
        (first / name).symlink_to("../B", target_is_directory=True)
    for name in ("toA", "toA2"):
        (second / name).symlink_to("../A", target_is_directory=True)
    started = time.monotonic()
    digest = artefact_hash(first, root=root)
    assert time.monotonic() - started < 5
    assert digest == "sha256:" + sha256sum(first, ["m.bin", "toB/n.bin", "toB2/n.bin"])


def test_empty_or_missing_is_no_model_file(tmp_path):
    folder = write(tmp_path / "EXP-001", {"run.json": b"{}"})
    with pytest.raises(NoModelFile):
        artefact_hash(folder)
    with pytest.raises(FileNotFoundError):  # what callers asking "a model yet?" catch
        artefact_hash(tmp_path / "nope")


def test_hash_for_cell_uses_the_repository_cache(tmp_path):
    repo = init_repo(tmp_path / "project")
    folder = write(repo / "artefacts" / "EXP-001", {"model.pt": b"w", "x.bin": b"x"})
    time.sleep(0.1)  # out of the racy window: digests taken in it are never kept
    first = hash_for_cell(folder)
    assert (repo / ".aisdp-log" / "hashes.json").is_file()
    assert hash_for_cell(folder) == first == "sha256:" + sha256sum(folder,
                                                                   ["model.pt", "x.bin"])


def test_cli_hash_prints_the_cell_value(tmp_path):
    folder = write(tmp_path / "EXP-001", {"model.pt": b"w", "opt.pt": b"o"})
    result = cli("hash", str(folder))
    assert (result.returncode, result.stdout) == (0, artefact_hash(folder) + "\n")
    result = cli("hash", str(folder / "model.pt"))
    assert (result.returncode, result.stdout.strip()) == (0, artefact_hash(folder / "model.pt"))


@pytest.mark.parametrize("make", ["missing", "empty", "records only"])
def test_cli_hash_without_a_model_is_exit_2_one_line(tmp_path, make):
    path = tmp_path / "EXP-001"
    if make != "missing":
        path.mkdir()
    if make == "records only":
        (path / "run.json").write_text("{}")
    result = cli("hash", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
