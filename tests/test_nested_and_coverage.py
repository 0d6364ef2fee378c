"""Issue 10 items 1-3 on a project in the shape of DVC's get-started example: nested
`params.yaml`, a `dvc.yaml` stage run by `dvc repro` writing a dvclive-shaped nested
`eval/metrics.json`, a custom params file declared by the stage, and an artefact folder whose
`run.json` and `metrics.json` are nested too. Nested names resolve as DVC flattens them, the
params files witness `params.*` cells at the row's commit (D004), and every evidence cell is
either verified or counted as unverified (A008 where a witness lacks the key)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from builders import commit, init_repo, write_log

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.lint.runner import validate
from aisdp_log.workbook.table import cell_ref

pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The get-started-shaped project, trained once by `dvc repro` and committed."""
    root = init_repo(tmp_path_factory.mktemp("getstarted") / "project")
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


@pytest.fixture
def project(built, tmp_path) -> dict:
    """A copy of the trained project with the artefact folder of EXP-001, as the training
    helper leaves it: the model, a nested `run.json` and a nested `metrics.json`."""
    root = tmp_path / "project"
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


def codes(report) -> list[tuple[str, str]]:
    return sorted((f.code, f.cell) for f in report.findings)


# --------------------------------------------------------------------------- the proofs

def test_a_faithful_log_validates_with_every_evidence_cell_verified(project):
    report = check(project)
    assert codes(report) == []
    # 4 params, 2 metrics, data version, commit, seed, artefact hash, the lock file
    assert report.coverage.to_dict() == {"verified": 11, "unverified": 0,
                                         "unverified_cells": []}


def test_a_swapped_nested_metric_is_a003_at_that_cell(project):
    report = check(project, **{"metrics.avg_prec.test": 0.95})  # the train score
    assert codes(report) == [("A003", cell("metrics.avg_prec.test"))]
    assert report.coverage.unverified == 0


def test_a_wrong_nested_param_is_a004_and_d004_at_that_cell(project):
    report = check(project, **{"params.train.n_est": 60})
    assert codes(report) == [("A004", cell("params.train.n_est")),
                             ("D004", cell("params.train.n_est"))]
    d004 = next(f for f in report.findings if f.code == "D004")
    assert d004.severity.value == "warning"
    assert "params.yaml" in d004.message and "commit" in d004.message


def test_the_params_file_at_the_commit_is_a_witness_of_its_own(project):
    # run.json agrees with the row, but the commit's params files say otherwise: checking
    # the commit out would train another model
    run = dict(project["run"], params={"train": {"n_est": 60, "min_split": 2},
                                       "featurize": {"max_features": 100},
                                       "evaluate": {"threshold": 0.01}})
    (project["folder"] / "run.json").write_text(json.dumps(run))
    report = check(project, **{"params.train.n_est": 60, "params.evaluate.threshold": "1e-2"})
    assert codes(report) == [("D004", cell("params.train.n_est")),
                             ("D004", cell("params.evaluate.threshold"))]
    threshold = [f for f in report.findings if f.cell == cell("params.evaluate.threshold")]
    assert "custom.yaml" in threshold[0].message  # the file the stage declares


def test_a_metric_missing_from_metrics_json_is_a008_and_listed_unverified(project):
    (project["folder"] / "metrics.json").write_text(json.dumps(
        {"avg_prec": METRICS["avg_prec"]}))
    report = check(project)
    assert codes(report) == [("A008", cell("metrics.roc_auc.test"))]
    assert report.errors == 0
    assert report.coverage.unverified_cells == [f"Experiments!{cell('metrics.roc_auc.test')}"]
    assert (report.coverage.verified, report.coverage.unverified) == (10, 1)


def test_a_param_run_json_lacks_is_verified_by_the_params_file_without_a008(project):
    run = dict(project["run"], params={"featurize": {"max_features": 100}})
    (project["folder"] / "run.json").write_text(json.dumps(run))
    report = check(project)
    assert codes(report) == []  # params.yaml and custom.yaml at the commit hold them all
    assert report.coverage.unverified == 0


def test_a_param_no_witness_holds_is_a008(project):
    report = check(project, extra={"params.train.depth": 7})
    assert codes(report) == [("A008", extra_cell())]
    assert report.coverage.unverified_cells == [f"Experiments!{extra_cell()}"]


def test_params_file_lists_and_booleans_compare_as_values(project):
    root = project["root"]
    params = {**PARAMS, "model": {"layers": [64, 32], "batch_norm": True}}
    sha = commit(root, {"params.yaml": yaml.safe_dump(params)}, message="a deeper model",
                 date="2026-07-01T10:00:00+00:00")
    run = dict(project["run"], commit=sha, params={**params, **CUSTOM})
    (project["folder"] / "run.json").write_text(json.dumps(run))
    same = {"params.model.layers": "[64, 32]", "params.model.batch_norm": "TRUE"}
    report = check(project, extra=same, **{"Code commit": sha[:10]})
    assert codes(report) == []
    assert report.coverage.unverified == 0
    run["params"]["model"] = {"layers": [64, 16], "batch_norm": False}  # run.json agrees
    (project["folder"] / "run.json").write_text(json.dumps(run))
    other = {"params.model.layers": "[64, 16]", "params.model.batch_norm": False}
    report = check(project, extra=other, **{"Code commit": sha[:10]})
    assert codes(report) == [("D004", extra_cell(0)), ("D004", extra_cell(1))]


def test_a_flat_key_holding_a_dot_still_works(project):
    (project["folder"] / "metrics.json").write_text(json.dumps(
        {"avg_prec.test": 0.9, "roc_auc": {"test": 0.5}}))
    report = check(project)
    assert codes(report) == [("A003", cell("metrics.roc_auc.test"))]


def test_the_text_and_json_output_give_the_coverage(project):
    log = write_log(project["root"] / "experiment-log.xlsx",
                    [faithful_row(project, **{"Random seed": 7})], headers=HEADERS,
                    metrics=METRIC_ROWS)
    os.remove(project["folder"] / "metrics.json")
    cli = [sys.executable, "-m", "aisdp_log", "validate", str(log)]
    text = subprocess.run(cli, cwd=project["root"], capture_output=True, text=True,
                          env=dict(os.environ, NO_COLOR="1"))
    assert text.returncode == 1  # A004 at the seed
    assert text.stdout.splitlines()[-1] == "9 of 11 evidence cells verified"
    document = json.loads(subprocess.run(cli + ["--format", "json"], cwd=project["root"],
                                         capture_output=True, text=True).stdout)
    assert document["summary"]["coverage"] == {
        "verified": 9, "unverified": 2,
        "unverified_cells": [f"Experiments!{cell('metrics.avg_prec.test')}",
                             f"Experiments!{cell('metrics.roc_auc.test')}"]}
    offline = subprocess.run(cli + ["--offline"], cwd=project["root"], capture_output=True,
                             text=True, env=dict(os.environ, NO_COLOR="1"))
    assert offline.stdout.splitlines()[-1].startswith("0 of 11 evidence cells verified")
    assert "--offline" in offline.stdout.splitlines()[-1]


def test_a_warm_run_counts_what_the_verdict_cache_skipped(project):
    first = check(project)
    second = check(project)  # the clean row's verdict now stands for its comparisons
    assert first.coverage.to_dict() == second.coverage.to_dict()
    assert second.coverage.verified == 11


# --------------------------------------------------------------------------- add, template

def test_template_with_dotted_names_then_add_fills_the_nested_record(project):
    root = project["root"]
    (root / "aisdp.toml").write_text(
        '[template]\nparams = { "train.n_est" = "int", "train.min_split" = "int", '
        '"evaluate.threshold" = "float" }\n'
        '[template.metrics."avg_prec.test"]\ngoal = "max"\nthreshold = 0.8\n'
        '[template.metrics."roc_auc.test"]\ngoal = "max"\nthreshold = 0.8\n')
    log = root / "experiment-log.xlsx"
    cli = [sys.executable, "-m", "aisdp_log"]
    made = subprocess.run(cli + ["template", "-o", str(log)], cwd=root, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr
    added = subprocess.run(cli + ["add", str(log), "EXP-001"], cwd=root, capture_output=True,
                           text=True)
    assert added.returncode == 0, added.stderr

    import openpyxl

    workbook = openpyxl.load_workbook(log)
    sheet = workbook["Experiments"]
    headers = [c.value for c in sheet[1]]
    values = dict(zip(headers, [c.value for c in sheet[2]]))
    assert {h: values[h] for h in ("params.train.n_est", "params.train.min_split",
                                   "params.evaluate.threshold", "metrics.avg_prec.test",
                                   "metrics.roc_auc.test")} == {
        "params.train.n_est": 50, "params.train.min_split": 2,
        "params.evaluate.threshold": 0.001, "metrics.avg_prec.test": 0.9,
        "metrics.roc_auc.test": 0.93}
    assert values["Other params"] == "featurize.max_features=100"
    assert [r[0].value for r in workbook["Metrics"].iter_rows(min_row=2)] == \
        ["avg_prec.test", "roc_auc.test"]
    report = validate(log, repo=root)
    # the hypothesis is the person's to write, left empty by `add`; nothing else is amiss
    assert {(f.code, f.column) for f in report.findings if f.severity.value == "error"} \
        == {("S002", "Hypothesis")}
    assert report.coverage.to_dict() == {"verified": 10, "unverified": 0,
                                         "unverified_cells": []}


def test_the_review_shows_the_same_figure(project, tmp_path):
    from aisdp_log.review.write import write_review

    (project["folder"] / "metrics.json").write_text(json.dumps(
        {"avg_prec": METRICS["avg_prec"]}))
    log = write_log(project["root"] / "experiment-log.xlsx", [faithful_row(project)],
                    headers=HEADERS, metrics=METRIC_ROWS)
    figure = validate(log, repo=project["root"]).coverage.line()
    assert figure == "10 of 11 evidence cells verified"
    result = write_review(log, output_dir=tmp_path / "out", repo=project["root"])
    unverified = f"Experiments!{cell('metrics.roc_auc.test')}"
    for text in (result.html_path.read_text(), result.markdown_path.read_text()):
        assert figure in text and unverified in text
