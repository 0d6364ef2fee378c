"""D004 on a project in the shape of DVC's get-started example (dvc_projects.py): the params
files (`params.yaml` and the custom file a stage declares) as they were at the row's commit
witness each nested `params.*` cell, beside the artefact folder's `run.json`."""

from __future__ import annotations

import json

import pytest
import yaml
from builders import assert_findings, commit
from dvc_projects import CUSTOM, PARAMS, cell, check, extra_cell

pytestmark = pytest.mark.slow


def test_a_wrong_nested_param_is_a004_and_d004_at_that_cell(getstarted):
    report = check(getstarted, **{"params.train.n_est": 60})
    assert_findings(report, [("A004", cell("params.train.n_est")),
                             ("D004", cell("params.train.n_est"))])
    d004 = next(f for f in report.findings if f.code == "D004")
    assert d004.severity.value == "warning"
    assert "params.yaml" in d004.message and "commit" in d004.message


def test_the_params_file_at_the_commit_is_a_witness_of_its_own(getstarted):
    # run.json agrees with the row, but the commit's params files say otherwise: checking
    # the commit out would train another model
    run = dict(getstarted["run"], params={"train": {"n_est": 60, "min_split": 2},
                                          "featurize": {"max_features": 100},
                                          "evaluate": {"threshold": 0.01}})
    (getstarted["folder"] / "run.json").write_text(json.dumps(run))
    report = check(getstarted,
                   **{"params.train.n_est": 60, "params.evaluate.threshold": "1e-2"})
    assert_findings(report, [("D004", cell("params.train.n_est")),
                             ("D004", cell("params.evaluate.threshold"))])
    threshold = [f for f in report.findings if f.cell == cell("params.evaluate.threshold")]
    assert "custom.yaml" in threshold[0].message  # the file the stage declares


def test_a_param_run_json_lacks_is_verified_by_the_params_file_without_a008(getstarted):
    run = dict(getstarted["run"], params={"featurize": {"max_features": 100}})
    (getstarted["folder"] / "run.json").write_text(json.dumps(run))
    report = check(getstarted)
    assert_findings(report, [])  # params.yaml and custom.yaml at the commit hold them all
    assert report.coverage.unverified == 0


def test_params_file_lists_and_booleans_compare_as_values(getstarted):
    root = getstarted["root"]
    params = {**PARAMS, "model": {"layers": [64, 32], "batch_norm": True}}
    sha = commit(root, {"params.yaml": yaml.safe_dump(params)}, message="a deeper model",
                 date="2026-07-01T10:00:00+00:00")
    run = dict(getstarted["run"], commit=sha, params={**params, **CUSTOM})
    (getstarted["folder"] / "run.json").write_text(json.dumps(run))
    same = {"params.model.layers": "[64, 32]", "params.model.batch_norm": "TRUE"}
    report = check(getstarted, extra=same, **{"Code commit": sha[:10]})
    assert_findings(report, [])
    assert report.coverage.unverified == 0
    run["params"]["model"] = {"layers": [64, 16], "batch_norm": False}  # run.json agrees
    (getstarted["folder"] / "run.json").write_text(json.dumps(run))
    other = {"params.model.layers": "[64, 16]", "params.model.batch_norm": False}
    report = check(getstarted, extra=other, **{"Code commit": sha[:10]})
    assert_findings(report, [("D004", extra_cell(0)), ("D004", extra_cell(1))])
