"""docs/containers.md's recipe, run as it is written: build a Python image from Debian packages,
record a run inside it, `add` it, and rerun it bitwise with `--env image` (a real Podman)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from containers import podman

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parent.parent / "docs" / "containers.md"


def test_the_recipe_runs_as_written(tmp_path):
    podman()
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("the recipe builds its image with apt-get and dpkg (Debian)")
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- recipe:start -->\s*```bash\n(.*?)```", text, re.S)
    assert block is not None, "docs/containers.md lost its recipe block"
    bin_dir = Path(sys.executable).parent  # aisdp-log, dvc and python of this environment
    env = dict(os.environ, WORK=str(tmp_path), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", GIT_CONFIG_NOSYSTEM="1", HOME=str(tmp_path))
    if not shutil.which("aisdp-log", path=env["PATH"]):
        pytest.skip("aisdp-log is not installed as a command in this environment")
    result = subprocess.run(["bash", "-c", block[1]], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "EXP-001: bitwise" in result.stdout
