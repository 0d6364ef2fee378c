"""D004 on a project in the shape of DVC's get-started example (dvc_projects.py): the params
files (`params.yaml` and the custom file a stage declares) as they were at the row's commit
witness each nested `params.*` cell, beside the artefact folder's `run.json`."""

from __future__ import annotations

import json

import pytest
import yaml
from builders import assert_findings, commit, write_log
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


# --------------------------------------------------------------------------- foreach, matrix

def _templated_project(root):
    """A real DVC project whose params files are declared only by a `foreach` stage (one
    file per model) and a `matrix` stage (one per optimizer), reproduced by `dvc repro` so
    DVC itself accepts the pipeline; returns the commit."""
    import sys

    from builders import init_repo
    from dvc_projects import dvc

    init_repo(root)
    dvc(root, "init", "-q")
    write = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write('x')\""
    pipeline = {"stages": {
        "train": {"foreach": ["cnn", "forest"], "do": {
            "cmd": f"{write} out-${{item}}.txt",
            "params": [{"models/${item}.yaml": ["train.lr"]}],
            "outs": ["out-${item}.txt"]}},
        "tune": {"matrix": {"optimizer": ["adam", "sgd"], "size": [1]},
                 "cmd": f"{write} tune-${{item.optimizer}}.txt",
                 "params": [{"tune/${item.optimizer}.json": ["momentum"]}],
                 "outs": ["tune-${item.optimizer}.txt"]}}}
    files = {"dvc.yaml": yaml.safe_dump(pipeline, sort_keys=False),
             "models/cnn.yaml": "train:\n  lr: 0.01\n  epochs: 100\n",
             "models/forest.yaml": "train:\n  lr: 0.3\n  epochs: 100\n",
             "tune/adam.json": '{"momentum": 0.9}', "tune/sgd.json": '{"momentum": 0.6135}'}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    dvc(root, "repro", "-q")
    return commit(root, message="foreach and matrix stages", date="2026-07-01T09:00:00+00:00")


@pytest.mark.parametrize("cells, expected", [
    ({"params.train.lr": 0.01, "params.momentum": 0.9}, []),   # cnn's file, adam's file
    ({"params.train.lr": 0.3, "params.momentum": "0.6135"}, []),  # forest's, sgd's (text)
    ({"params.train.epochs": 100.0, "params.momentum": 0.6135}, []),  # 100.0 is 100
    ({"params.train.lr": 0.02, "params.momentum": 0.5},
     ["params.train.lr", "params.momentum"]),                    # no item's file agrees
    ({"params.train.lr": "0,01", "params.momentum": 61.35},
     ["params.train.lr", "params.momentum"]),                    # only look equal
])
def test_params_files_of_foreach_and_matrix_stages_witness_the_cells(tmp_path, cells,
                                                                      expected):
    from aisdp_log.lint.runner import validate
    from aisdp_log.workbook.table import cell_ref

    root = tmp_path / "project"
    sha = _templated_project(root)
    headers = ["Experiment ID", "Date", "Code commit", *cells]
    log = write_log(root / "log.xlsx", [{"Experiment ID": "EXP-001", "Date": "2026-07-02",
                                         "Code commit": sha[:10], **cells}], headers=headers)
    report = validate(log, repo=root)
    assert_findings(report, [("D004", cell_ref(2, headers.index(name))) for name in expected],
                    "D004")
    if not expected:
        assert report.coverage.unverified == 0  # each cell found its witness
    messages = {f.cell: f.message for f in report.findings if f.code == "D004"}
    if expected and cells["params.momentum"] == 61.35:
        assert "per cent" in messages[cell_ref(2, headers.index("params.momentum"))]
        assert "decimal comma" in messages[cell_ref(2, headers.index("params.train.lr"))]
