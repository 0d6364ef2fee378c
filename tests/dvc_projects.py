"""The DVC-get-started-shaped project (nested `params.yaml`, a `dvc.yaml` stage run by `dvc
repro` writing a dvclive-shaped nested `eval/metrics.json`, a custom params file the stage
declares, an artefact folder with a nested `run.json` and `metrics.json`) and a faithful log row
of it, shared by test_checks_params.py and test_nested_and_coverage.py. The fixtures that build
it once per session (`built_getstarted`) and copy it per test (`getstarted`) are in conftest.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from builders import commit, init_repo, write_log

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.lint.runner import validate
from aisdp_log.workbook.table import cell_ref

DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")
PARAMS = {"train": {"n_est": 50, "min_split": 2}, "featurize": {"max_features": 100}}
CUSTOM = {"evaluate": {"threshold": 1e-3}}
METRICS = {"avg_prec": {"test": 0.9, "train": 0.95}, "roc_auc": {"test": 0.93, "train": 0.97}}
TRAIN = """\
import json, pathlib, yaml
params = yaml.safe_load(open("params.yaml"))
custom = yaml.safe_load(open("custom.yaml"))
pathlib.Path("eval").mkdir(exist_ok=True)
pathlib.Path("model").mkdir(exist_ok=True)
data = open("data/data.xml").read()
pathlib.Path("model/model.pkl").write_text(
    f"forest n_est={params['train']['n_est']} rows={len(data.splitlines())}")
# what dvclive's Live.log_metric("avg_prec/test", ...) leaves in eval/metrics.json
json.dump(METRICS_JSON, open("eval/metrics.json", "w"))
""".replace("METRICS_JSON", json.dumps(METRICS))
HEADERS = ["Experiment ID", "Date", "Hypothesis", "params.train.n_est",
           "params.train.min_split", "params.featurize.max_features",
           "params.evaluate.threshold", "Data version", "Code commit", "Random seed",
           "Training duration", "metrics.avg_prec.test", "metrics.roc_auc.test",
           "Artefact hash", "Environment", "Outcome", "Notes"]
METRIC_ROWS = [{"Metric": "avg_prec.test", "Goal": "max", "Threshold": 0.8},
               {"Metric": "roc_auc.test", "Goal": "max", "Threshold": 0.8}]
LOCK = "scikit-learn==1.5.2\ndvclive==3.48.0\n"


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=DVC_ENV, check=True,
                   capture_output=True)


def cell(header: str, number: int = 2) -> str:
    return cell_ref(number, HEADERS.index(header))


def build_getstarted(root: Path) -> dict:
    """The get-started-shaped project at `root`, trained by `dvc repro` and committed."""
    root = init_repo(root)
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    (root / "data").mkdir()
    (root / "data" / "data.xml").write_text("<posts>\n<row Id='1'/>\n<row Id='2'/>\n</posts>\n")
    dvc(root, "add", "-q", "data/data.xml")
    stage = {"stages": {"train": {
        "cmd": f"{sys.executable} src/train.py",
        "deps": ["src/train.py", "data/data.xml"],
        "params": ["train.n_est", "train.min_split", {"custom.yaml": ["evaluate.threshold"]}],
        "outs": ["model/model.pkl"],
        "metrics": [{"eval/metrics.json": {"cache": False}}]}}}
    files = {"params.yaml": yaml.safe_dump(PARAMS), "custom.yaml": "evaluate:\n  threshold: 1e-3\n",
             "src/train.py": TRAIN, "dvc.yaml": yaml.safe_dump(stage, sort_keys=False),
             "requirements.txt": LOCK}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    dvc(root, "repro", "-q")
    sha = commit(root, message="train the forest", date="2026-07-01T09:00:00+00:00")
    md5 = yaml.safe_load((root / "data" / "data.xml.dvc").read_text())["outs"][0]["md5"]
    return {"root": root, "sha": sha, "md5": md5}


def copy_getstarted(built: dict, root: Path) -> dict:
    """A copy at `root` of the trained project with the artefact folder of EXP-001, as the
    training helper leaves it: the model, a nested `run.json` and a nested `metrics.json`."""
    shutil.copytree(built["root"], root, symlinks=True)
    folder = root / "artefacts" / "EXP-001"
    folder.mkdir(parents=True)
    shutil.copy(root / "model" / "model.pkl", folder / "model.pkl")
    shutil.copy(root / "eval" / "metrics.json", folder / "metrics.json")
    run = {"experiment_id": "EXP-001", "seed": 42, "commit": built["sha"], "dirty": False,
           "data_version": built["md5"], "params": {**PARAMS, **CUSTOM},
           "started": "2026-07-02T09:00:00Z", "duration_s": 90.0, "status": "completed",
           "environment": {"summary": "python 3.11"}}
    (folder / "run.json").write_text(json.dumps(run))
    return {**built, "root": root, "folder": folder, "run": run}


def faithful_row(project: dict, **changes) -> dict:
    lock_hash = hashlib.sha256(LOCK.encode()).hexdigest()
    values = {
        "Experiment ID": "EXP-001", "Date": "2026-07-02", "Hypothesis": "a forest of 50",
        "params.train.n_est": 50, "params.train.min_split": 2,
        "params.featurize.max_features": 100, "params.evaluate.threshold": 0.001,
        "Data version": project["md5"][:8], "Code commit": project["sha"][:10],
        "Random seed": 42, "Training duration": 1.5, "metrics.avg_prec.test": 0.9,
        "metrics.roc_auc.test": 0.93, "Artefact hash": artefact_hash(project["folder"]),
        "Environment": f"python 3.11; requirements.txt sha256:{lock_hash}",
        "Outcome": "baseline", "Notes": "the reference"}
    values.update(changes)
    return values


def check(project: dict, extra: dict | None = None, **changes):
    """Validate a log of the faithful row with `changes`; `extra` adds columns after
    HEADERS (their cells: `extra_cell(i)`)."""
    extra = extra or {}
    log = write_log(project["root"] / "experiment-log.xlsx",
                    [faithful_row(project, **changes, **extra)],
                    headers=HEADERS + list(extra), metrics=METRIC_ROWS)
    return validate(log, repo=project["root"])


def extra_cell(position: int = 0) -> str:
    return cell_ref(2, len(HEADERS) + position)

