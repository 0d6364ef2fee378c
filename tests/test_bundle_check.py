"""Damaged or hostile bundles are one-line refusals (exit 2) naming the bundle and the cause:
a file that is no zip, a truncated zip, a corrupt member, member names that alias each other;
and the member checks stay linear (benchmarks/bench_bundle_members.py times them)."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest
from builders import run_cli


def refused(path: Path) -> str:
    done = run_cli("verify", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    assert "internal error" not in lines[0]
    return lines[0]


def write_zip(path: Path, members: list[tuple[str, bytes]], *, deflate: bool = False) -> Path:
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def test_a_zip_that_is_no_zip_is_named_as_such(tmp_path):
    bundle = tmp_path / "evidence.zip"
    bundle.write_text("an HTML error page saved as evidence.zip")
    assert "not a zip file" in refused(bundle)


def test_a_truncated_zip_is_named_as_such(tmp_path):
    bundle = write_zip(tmp_path / "whole.zip", [("SHA256SUMS", b""), ("a.txt", b"x" * 5000)])
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bundle.read_bytes()[:-30])
    assert "truncated" in refused(truncated)


def test_a_corrupt_member_is_named(tmp_path):
    data = bytes(range(256)) * 64
    bundle = write_zip(tmp_path / "b.zip", [("SHA256SUMS", b""), ("artefacts/model.bin", data)],
                       deflate=True)
    raw = bytearray(bundle.read_bytes())
    start = raw.index(b"artefacts/model.bin") + len("artefacts/model.bin") + 20
    raw[start] ^= 0xFF
    bundle.write_bytes(bytes(raw))
    message = refused(bundle)
    assert "artefacts/model.bin" in message and "corrupt" in message


@pytest.mark.parametrize("names", [
    ["SHA256SUMS", "./SHA256SUMS"],
    ["SHA256SUMS", "./experiment-log.xlsx"],
    ["SHA256SUMS", "reviews//review-2026-Q3.json"],
    ["SHA256SUMS", "reviews/./review-2026-Q3.json"],
    ["SHA256SUMS", "reviews/x.json", "reviews/x.json"],
    ["SHA256SUMS", "Reviews/x.json", "reviews/X.json"],
    ["SHA256SUMS", "reviews", "reviews/x.json"],
])
def test_aliased_member_names_are_refused(tmp_path, names):
    bundle = write_zip(tmp_path / "aliased.zip", [(name, b"x") for name in names])
    message = refused(bundle)
    assert any(word in message for word in ("aliased", "twice", "both a file and a folder"))


def test_sixty_thousand_members_with_a_duplicate_last_are_refused(tmp_path):
    members = [(f"artefacts/EXP-{n // 100:04d}/f-{n}.bin", b"") for n in range(59_999)]
    bundle = write_zip(tmp_path / "many.zip", [*members, members[0]])
    assert "appears twice" in refused(bundle)
