"""Issue 10 items 1-3 on a project in the shape of DVC's get-started example (dvc_projects.py):
nested `params.yaml`, a `dvc.yaml` stage run by `dvc repro` writing a dvclive-shaped nested
`eval/metrics.json`, a custom params file declared by the stage, and an artefact folder whose
`run.json` and `metrics.json` are nested too. Nested names resolve as DVC flattens them, and every
evidence cell is either verified or counted as unverified (A008 where a witness lacks the key).
The params files as witnesses of `params.*` cells (D004) are in test_checks_params.py."""

from __future__ import annotations

import json
import os

import pytest
from builders import run_cli, write_log
from dvc_projects import (
    HEADERS,
    METRIC_ROWS,
    METRICS,
    cell,
    check,
    extra_cell,
    faithful_row,
)

from aisdp_log.lint.runner import validate

pytestmark = pytest.mark.slow


def codes(report) -> list[tuple[str, str]]:
    return sorted((f.code, f.cell) for f in report.findings)


# --------------------------------------------------------------------------- the proofs

def test_a_faithful_log_validates_with_every_evidence_cell_verified(getstarted):
    report = check(getstarted)
    assert codes(report) == []
    # 4 params, 2 metrics, data version, commit, seed, artefact hash, the lock file
    assert report.coverage.to_dict() == {"verified": 11, "unverified": 0,
                                         "unverified_cells": []}


def test_a_swapped_nested_metric_is_a003_at_that_cell(getstarted):
    report = check(getstarted, **{"metrics.avg_prec.test": 0.95})  # the train score
    assert codes(report) == [("A003", cell("metrics.avg_prec.test"))]
    assert report.coverage.unverified == 0


def test_a_metric_missing_from_metrics_json_is_a008_and_listed_unverified(getstarted):
    (getstarted["folder"] / "metrics.json").write_text(json.dumps(
        {"avg_prec": METRICS["avg_prec"]}))
    report = check(getstarted)
    assert codes(report) == [("A008", cell("metrics.roc_auc.test"))]
    assert report.errors == 0
    assert report.coverage.unverified_cells == [f"Experiments!{cell('metrics.roc_auc.test')}"]
    assert (report.coverage.verified, report.coverage.unverified) == (10, 1)


def test_a_param_no_witness_holds_is_a008(getstarted):
    report = check(getstarted, extra={"params.train.depth": 7})
    assert codes(report) == [("A008", extra_cell())]
    assert report.coverage.unverified_cells == [f"Experiments!{extra_cell()}"]


def test_a_flat_key_holding_a_dot_still_works(getstarted):
    (getstarted["folder"] / "metrics.json").write_text(json.dumps(
        {"avg_prec.test": 0.9, "roc_auc": {"test": 0.5}}))
    report = check(getstarted)
    assert codes(report) == [("A003", cell("metrics.roc_auc.test"))]


def test_the_text_and_json_output_give_the_coverage(getstarted):
    log = write_log(getstarted["root"] / "experiment-log.xlsx",
                    [faithful_row(getstarted, **{"Random seed": 7})], headers=HEADERS,
                    metrics=METRIC_ROWS)
    os.remove(getstarted["folder"] / "metrics.json")
    text = run_cli("validate", str(log), cwd=getstarted["root"])
    assert text.returncode == 1  # A004 at the seed
    assert text.stdout.splitlines()[-1] == "9 of 11 evidence cells verified"
    document = json.loads(run_cli("validate", str(log), "--format", "json",
                                  cwd=getstarted["root"]).stdout)
    assert document["summary"]["coverage"] == {
        "verified": 9, "unverified": 2,
        "unverified_cells": [f"Experiments!{cell('metrics.avg_prec.test')}",
                             f"Experiments!{cell('metrics.roc_auc.test')}"]}
    offline = run_cli("validate", str(log), "--offline", cwd=getstarted["root"])
    assert offline.stdout.splitlines()[-1].startswith("0 of 11 evidence cells verified")
    assert "--offline" in offline.stdout.splitlines()[-1]


def test_a_warm_run_counts_what_the_verdict_cache_skipped(getstarted):
    first = check(getstarted)
    second = check(getstarted)  # the clean row's verdict now stands for its comparisons
    assert first.coverage.to_dict() == second.coverage.to_dict()
    assert second.coverage.verified == 11


# --------------------------------------------------------------------------- add, template

def test_template_with_dotted_names_then_add_fills_the_nested_record(getstarted):
    root = getstarted["root"]
    (root / "aisdp.toml").write_text(
        '[template]\nparams = { "train.n_est" = "int", "train.min_split" = "int", '
        '"evaluate.threshold" = "float" }\n'
        '[template.metrics."avg_prec.test"]\ngoal = "max"\nthreshold = 0.8\n'
        '[template.metrics."roc_auc.test"]\ngoal = "max"\nthreshold = 0.8\n')
    log = root / "experiment-log.xlsx"
    made = run_cli("template", "-o", str(log), cwd=root)
    assert made.returncode == 0, made.stderr
    added = run_cli("add", str(log), "EXP-001", cwd=root)
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


def test_the_review_shows_the_same_figure(getstarted, tmp_path):
    from aisdp_log.review.write import write_review

    (getstarted["folder"] / "metrics.json").write_text(json.dumps(
        {"avg_prec": METRICS["avg_prec"]}))
    log = write_log(getstarted["root"] / "experiment-log.xlsx", [faithful_row(getstarted)],
                    headers=HEADERS, metrics=METRIC_ROWS)
    figure = validate(log, repo=getstarted["root"]).coverage.line()
    assert figure == "10 of 11 evidence cells verified"
    result = write_review(log, output_dir=tmp_path / "out", repo=getstarted["root"])
    unverified = f"Experiments!{cell('metrics.roc_auc.test')}"
    for text in (result.html_path.read_text(), result.markdown_path.read_text()):
        assert figure in text and unverified in text
