"""The README's generated tables and its commands stay in step with the code and CI."""

from __future__ import annotations

import re
from pathlib import Path

from aisdp_log.findings import CATALOGUE
from aisdp_log.lint.catalogue import sync_readme

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_generated_blocks_are_current():
    # Regenerate with: python -m aisdp_log.lint.catalogue README.md
    assert sync_readme(README) == README


def test_every_code_is_in_the_readme_table():
    for code in CATALOGUE:
        assert re.search(rf"^\| {code} \|", README, re.M), code


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert len(blocks) >= 2, "the README must give the set-up and the test command"
    test_command = blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci


def test_the_windows_and_macos_workflow_runs_the_readme_test_command():
    posix = re.findall(r"```bash\n(.*?)\n```", README, re.S)[1].strip()
    powershell = re.findall(r"```powershell\n(.*?)\n```", README, re.S)
    assert len(powershell) >= 2, "the README must give its two commands for PowerShell too"
    workflow = (ROOT / ".github" / "workflows" / "windows-macos.yml").read_text(encoding="utf-8")
    assert f"run: {posix}\n" in workflow
    assert f"run: {powershell[1].strip()}\n" in workflow
    assert "windows-latest" in workflow and "macos-latest" in workflow
