"""Seeding and recording runs (aisdp_log.training): real git and DVC repos, real torch training."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builders import commit, git, init_repo

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.errors import AisdpLogError
from aisdp_log.record.training import RunRecordError, record_run, seed_everything

AISDP_VARS = ("AISDP_EXPERIMENT_ID", "AISDP_SEED", "AISDP_PARAMS", "AISDP_ARTEFACT_DIR")
SEEDING_VARS = ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG")
LOCK = "version = 1\n[[package]]\nname = \"torch\"\nversion = \"2.13.0\"\n"

#: A training script as a team writes it: defaults in the script, AISDP_* variables for reruns.
TRAIN_PY = textwrap.dedent('''
    import numpy as np
    import torch
    from aisdp_log.training import record_run

    with record_run("EXP-001", seed=7, params={"lr": 0.01, "epochs": 25, "hidden": 8}) as run:
        data = np.loadtxt("data/iris.csv", delimiter=",", dtype=np.float32)
        x, y = torch.from_numpy(data[:, :4]), torch.from_numpy(data[:, 4]).long()
        test = torch.arange(len(y)) % 5 == 0        # a fixed holdout split
        model = torch.nn.Sequential(torch.nn.Linear(4, run.params["hidden"]), torch.nn.ReLU(),
                                    torch.nn.Linear(run.params["hidden"], 3))
        optimiser = torch.optim.Adam(model.parameters(), lr=run.params["lr"])
        for epoch in range(run.params["epochs"]):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[~test]), y[~test])
            loss.backward()
            optimiser.step()
            run.log_epoch(epoch, loss=loss.item())
        with torch.no_grad():
            accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
        run.log_metrics(accuracy=accuracy)
        run.save_model(model)
''')


@pytest.fixture(autouse=True)
def clean_variables(monkeypatch):
    """No AISDP_* variable leaks in; what seeding sets is put back after each test."""
    for name in AISDP_VARS + SEEDING_VARS:
        monkeypatch.delenv(name, raising=False)


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True,
                   capture_output=True)


def make_project(repo: Path, toml: str = 'data = ["data/iris.csv.dvc"]\n') -> Path:
    """A real project: git, DVC with analytics off, iris data under `dvc add`, train.py,
    aisdp.toml and a uv.lock, all committed."""
    from sklearn.datasets import load_iris

    init_repo(repo)
    commit(repo, {"train.py": TRAIN_PY, "aisdp.toml": toml, "uv.lock": LOCK,
                  ".gitignore": "artefacts/\n"}, message="project")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    iris = load_iris()
    (repo / "data").mkdir()
    (repo / "data" / "iris.csv").write_text("".join(
        ",".join(f"{v:.1f}" for v in features) + f",{label}\n"
        for features, label in zip(iris.data, iris.target)))
    dvc(repo, "add", "-q", "data/iris.csv")
    commit(repo, message="data")
    return repo


def train(repo: Path, **variables: str) -> dict:
    """Run train.py in a fresh interpreter with AISDP_* variables; return its run.json."""
    env = {k: v for k, v in os.environ.items() if k not in AISDP_VARS + SEEDING_VARS}
    env.update({f"AISDP_{k.upper()}": v for k, v in variables.items()})
    result = subprocess.run([sys.executable, "train.py"], cwd=repo, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    folder = Path(env.get("AISDP_ARTEFACT_DIR") or
                  repo / "artefacts" / env.get("AISDP_EXPERIMENT_ID", "EXP-001"))
    return json.loads((folder / "run.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Four real runs of one project: the script's defaults, a same-seed rerun through the
    variables, another seed, and one from a modified tree into AISDP_ARTEFACT_DIR."""
    repo = make_project(tmp_path_factory.mktemp("trained") / "project")
    runs = {"EXP-001": train(repo)}
    runs["EXP-002"] = train(repo, experiment_id="EXP-002", seed="7",
                            params=json.dumps({"epochs": 25.0}))
    runs["EXP-003"] = train(repo, experiment_id="EXP-003", seed="8")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text(TRAIN_PY + "# tried something\n")
    elsewhere = repo.parent / "rerun-folder"
    runs["EXP-004"] = train(repo, experiment_id="EXP-004", artefact_dir=str(elsewhere),
                            params=json.dumps({"lr": 0.05, "momentum": 0.9}))
    return repo, head, elsewhere, runs


@pytest.mark.slow
def test_same_seed_same_hash_other_seed_other_hash(trained):
    repo, _, _, runs = trained
    assert runs["EXP-001"]["artefact_hash"] == runs["EXP-002"]["artefact_hash"]
    assert runs["EXP-003"]["artefact_hash"] != runs["EXP-001"]["artefact_hash"]
    for experiment_id in ("EXP-001", "EXP-002", "EXP-003"):
        assert runs[experiment_id]["artefact_hash"] == artefact_hash(
            repo / "artefacts" / experiment_id)


@pytest.mark.slow
def test_run_json_records_the_run(trained):
    repo, head, _, runs = trained
    record = runs["EXP-001"]
    md5 = hashlib.md5((repo / "data" / "iris.csv").read_bytes()).hexdigest()
    assert record["experiment_id"] == "EXP-001"
    assert record["seed"] == 7
    assert record["commit"] == head and len(head) == 40
    assert record["dirty"] is False
    assert record["data_version"] == md5
    assert record["data"] == [{"source": "data/iris.csv.dvc", "path": "data/iris.csv",
                               "md5": md5}]
    assert record["params"] == {"lr": 0.01, "epochs": 25, "hidden": 8}
    assert record["status"] == "completed" and record["error"] is None
    started = dt.datetime.fromisoformat(record["started"])
    assert started.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.timezone.utc) - started) < dt.timedelta(minutes=10)
    assert 0 < record["duration_s"] < 60
    import aisdp_log
    assert record["tool_version"] == aisdp_log.__version__
    environment = record["environment"]
    lock_sha = hashlib.sha256(LOCK.encode()).hexdigest()
    assert environment["lock_file"] == {"path": "uv.lock", "sha256": lock_sha}
    assert environment["summary"].startswith(f"uv.lock sha256:{lock_sha}; python ")
    assert environment["torch"]["version"].startswith("2.")
    assert environment["env_vars"]["PYTHONHASHSEED"] == "7"


@pytest.mark.slow
def test_metrics_history_and_model_files(trained):
    repo, _, _, runs = trained
    folder = repo / "artefacts" / "EXP-001"
    assert sorted(p.name for p in folder.iterdir()) == [
        "history.csv", "metrics.json", "model.safetensors", "run.json"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert list(metrics) == ["accuracy"] and 0.3 < metrics["accuracy"] <= 1
    lines = (folder / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss" and len(lines) == 1 + 25
    assert [line.split(",")[0] for line in lines[1:]] == [str(e) for e in range(25)]
    from safetensors.torch import load_file
    assert sorted(load_file(folder / "model.safetensors")) == [
        "0.bias", "0.weight", "2.bias", "2.weight"]


@pytest.mark.slow
def test_variables_win_and_params_merge(trained):
    repo, head, elsewhere, runs = trained
    # AISDP_PARAMS's 25.0 (a workbook number) took the int type of the script's default.
    assert runs["EXP-002"]["params"] == {"lr": 0.01, "epochs": 25, "hidden": 8}
    assert runs["EXP-003"]["seed"] == 8
    record = runs["EXP-004"]
    assert record["experiment_id"] == "EXP-004"
    assert record["params"] == {"lr": 0.05, "epochs": 25, "hidden": 8, "momentum": 0.9}
    assert (elsewhere / "run.json").is_file() and (elsewhere / "model.safetensors").is_file()
    assert not (repo / "artefacts" / "EXP-004").exists()
    assert record["commit"] == head
    assert record["dirty"] is True  # train.py was modified before the run


def test_failed_training_still_leaves_run_json(tmp_path):
    repo = init_repo(tmp_path / "repo")
    head = commit(repo, {"train.py": "print()\n"})
    with pytest.raises(RuntimeError, match="diverged"):
        with record_run("EXP-001", seed=1, repo=repo) as run:
            run.log_epoch(0, loss=float("nan"))
            raise RuntimeError("loss diverged")
    record = json.loads((repo / "artefacts" / "EXP-001" / "run.json").read_text())
    assert record["status"] == "failed" and run.status == "failed"
    assert record["error"] == {"type": "RuntimeError", "message": "loss diverged"}
    assert record["commit"] == head and record["artefact_hash"] is None
    assert record["duration_s"] >= 0 and record["environment"]["summary"]


def test_run_json_is_written_on_entry_and_sorted(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"a.txt": "a"})
    with record_run("EXP-001", seed=1, repo=repo) as run:
        during = json.loads((run.artefact_dir / "run.json").read_text())
        run.save_model(b"weights")
    assert during["status"] == "running"
    text = (run.artefact_dir / "run.json").read_text()
    record = json.loads(text)
    assert list(record) == sorted(record) and text.startswith('{\n  "')
    assert record["artefact_hash"] == run.artefact_hash == \
        "sha256:" + hashlib.sha256(b"weights").hexdigest()
    assert not [p for p in run.artefact_dir.iterdir() if p.name.endswith(".tmp")]


def test_dirty_ignores_the_artefacts_folder_but_not_code(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"train.py": "x = 1\n", "artefacts/OLD-1/model.bin": "old"})
    (repo / "artefacts" / "OLD-1" / "model.bin").write_text("changed")  # tracked, modified
    (repo / "notes.txt").write_text("untracked files do not count")
    with record_run("EXP-001", seed=1, repo=repo) as run:
        run.save_model(b"m")
    assert run.record["dirty"] is False
    (repo / "train.py").write_text("x = 2\n")
    with record_run("EXP-002", seed=1, repo=repo) as run:
        run.save_model(b"m")
    assert run.record["dirty"] is True


def test_outside_git_commit_and_dirty_are_none(tmp_path):
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        run.save_model(b"m")
    assert run.record["commit"] is None and run.record["dirty"] is None
    assert run.record["data_version"] is None and run.record["data"] == []


def test_no_arguments_reads_every_aisdp_variable(tmp_path, monkeypatch):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"a.txt": "a"})
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")  # the repository is found above the current directory
    monkeypatch.setenv("AISDP_EXPERIMENT_ID", "EXP-009")
    monkeypatch.setenv("AISDP_SEED", "4294967295")
    monkeypatch.setenv("AISDP_PARAMS", '{"optimizer": "adam"}')
    with record_run() as run:
        run.save_model(b"m")
    assert (run.experiment_id, run.seed, run.params) == ("EXP-009", 4294967295,
                                                         {"optimizer": "adam"})
    assert run.artefact_dir == (repo / "artefacts" / "EXP-009").resolve()
    monkeypatch.setenv("AISDP_ARTEFACT_DIR", str(tmp_path / "given"))
    monkeypatch.setenv("AISDP_EXPERIMENT_ID", "EXP-010")
    with record_run("EXP-999", seed=3) as run:
        run.save_model(b"m")
    assert run.experiment_id == "EXP-010" and run.seed == 4294967295
    assert json.loads((tmp_path / "given" / "run.json").read_text())["experiment_id"] == "EXP-010"


def test_no_seed_anywhere_draws_one_and_records_it(tmp_path):
    with record_run("EXP-001", repo=tmp_path) as run:
        run.save_model(b"m")
    assert 0 <= run.record["seed"] <= 4294967295 and run.record["seed"] == run.seed


@pytest.mark.parametrize("variable, value", [
    ("AISDP_SEED", "-1"), ("AISDP_SEED", "4294967296"), ("AISDP_SEED", "4.5"),
    ("AISDP_PARAMS", "{not json"), ("AISDP_PARAMS", "[1, 2]"), ("AISDP_EXPERIMENT_ID", "../x"),
])
def test_bad_variables_are_refused(tmp_path, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(RunRecordError):
        record_run("EXP-001", seed=1, repo=tmp_path)
    assert not (tmp_path / "artefacts").exists()


@pytest.mark.parametrize("experiment_id", ["..", ".", "a/b", "a\\b", "", None, " EXP-1"])
def test_ids_that_cannot_name_a_folder_are_refused(tmp_path, experiment_id):
    (tmp_path / "aisdp.toml").write_text('id_pattern = ".*"\n')  # the pattern allows anything
    with pytest.raises(RunRecordError):
        record_run(experiment_id, seed=1, repo=tmp_path)
    assert not (tmp_path / "artefacts").exists()


def test_id_must_match_the_configured_pattern_and_folder(tmp_path):
    (tmp_path / "aisdp.toml").write_text('id_pattern = "^EXP-[0-9]{3,}$"\nartefacts = "out"\n')
    with pytest.raises(RunRecordError):
        record_run("exp-1", seed=1, repo=tmp_path)
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        run.save_model(b"m")
    assert run.artefact_dir == (tmp_path / "out" / "EXP-001").resolve()
    assert issubclass(RunRecordError, AisdpLogError)


def test_a_finished_run_is_never_overwritten_silently(tmp_path):
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        run.save_model(b"first")
        run.save_model(b"extra", name="extra.bin")
    before = (run.artefact_dir / "run.json").read_bytes()
    with pytest.raises(RunRecordError):
        with record_run("EXP-001", seed=2, repo=tmp_path):
            pass
    assert (run.artefact_dir / "run.json").read_bytes() == before
    (run.artefact_dir / "reruns" / "x").mkdir(parents=True)
    with record_run("EXP-001", seed=2, repo=tmp_path, overwrite=True) as again:
        again.save_model(b"second")
    # overwrite empties the folder (a stale extra.bin would change the hash) but keeps reruns/
    assert sorted(p.name for p in again.artefact_dir.iterdir()) == [
        "model.safetensors", "reruns", "run.json"]
    assert again.record["seed"] == 2


def test_a_folder_with_stray_model_files_is_refused(tmp_path):
    (tmp_path / "artefacts" / "EXP-001").mkdir(parents=True)
    (tmp_path / "artefacts" / "EXP-001" / "model.pt").write_bytes(b"hand-made")
    with pytest.raises(RunRecordError):
        with record_run("EXP-001", seed=1, repo=tmp_path):
            pass
    assert (tmp_path / "artefacts" / "EXP-001" / "model.pt").read_bytes() == b"hand-made"


def test_a_failed_run_may_be_retried(tmp_path):
    with pytest.raises(KeyError):
        with record_run("EXP-001", seed=1, repo=tmp_path) as run:
            run.save_model(b"partial", name="checkpoint.bin")
            raise KeyError("lr")
    with pytest.warns(UserWarning, match="did not complete"):
        with record_run("EXP-001", seed=1, repo=tmp_path) as run:
            run.save_model(b"m")
    assert run.status == "completed"
    assert not (run.artefact_dir / "checkpoint.bin").exists()


def test_log_epoch_keeps_columns_stable(tmp_path):
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        run.log_epoch(0, loss=1.5, accuracy=0.25)
        run.log_epoch(1, accuracy=0.5, loss=1.0)  # keyword order does not move columns
        run.log_epoch(2, loss=0.5, f1=0.4)        # a new metric adds a column at the end
        with pytest.raises(TypeError):
            run.log_epoch(3, loss="high")
        run.save_model(b"m")
    assert (run.artefact_dir / "history.csv").read_text() == (
        "epoch,loss,accuracy,f1\n0,1.5,0.25,\n1,1.0,0.5,\n2,0.5,,0.4\n")


def test_log_metrics_writes_a_flat_object(tmp_path):
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        run.log_metrics(accuracy=0.9125, f1=0.5)
        run.log_metrics(f1=0.875)
        with pytest.raises(ValueError):
            run.log_metrics(loss=float("inf"))
        with pytest.raises(TypeError):
            run.log_metrics(note="good")
        run.save_model(b"m")
    assert json.loads((run.artefact_dir / "metrics.json").read_text()) == {
        "accuracy": 0.9125, "f1": 0.875}


def test_path_keeps_extra_files_inside_the_folder(tmp_path):
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        run.path("plots/curve.txt").write_text("curve")
        for name in ("run.json", "metrics.json", "reruns/x", "../escape", "/tmp/abs"):
            with pytest.raises(ValueError):
                run.path(name)
        run.save_model(b"m")
    assert (run.artefact_dir / "plots" / "curve.txt").read_text() == "curve"
    assert run.artefact_hash == artefact_hash(run.artefact_dir)


def test_save_model_copies_files_and_folders(tmp_path):
    source = tmp_path / "booster.json"
    source.write_text('{"trees": []}')
    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "v.bin").write_bytes(b"v")
    with record_run("EXP-001", seed=1, repo=tmp_path / "repo") as run:
        assert run.save_model(str(source), name="booster.json").read_text() == '{"trees": []}'
        run.save_model(folder, name="tf")
        with pytest.raises(FileNotFoundError):
            run.save_model(tmp_path / "missing", name="missing")
    assert (run.artefact_dir / "tf" / "variables" / "v.bin").read_bytes() == b"v"


def test_equal_weights_give_equal_bytes(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    state = model.state_dict()
    reordered = collections.OrderedDict(reversed(list(state.items())))
    reordered._metadata = {"": {"version": 99}}  # what torch.save would pickle
    # Same values, different memory layout: a transposed copy made contiguous again.
    relaid = {k: (v.t().contiguous().t() if v.dim() == 2 else v.clone())
              for k, v in state.items()}
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        paths = [run.save_model(model),
                 run.save_model(reordered, name="other-name.safetensors"),
                 run.save_model(relaid, name="sub/relaid.safetensors")]
    blobs = [p.read_bytes() for p in paths]
    assert blobs[0] == blobs[1] == blobs[2]
    assert not relaid["0.weight"].is_contiguous()
    from safetensors.torch import load_file
    loaded = load_file(paths[0])
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # Different weights, different bytes.
    with torch.no_grad():
        model[0].bias[0] += 1
    with record_run("EXP-002", seed=1, repo=tmp_path) as run:
        assert run.save_model(model).read_bytes() != blobs[0]


def test_save_model_handles_tied_weights_and_refuses_non_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    embedding = torch.nn.Embedding(6, 3)
    head = torch.nn.Linear(3, 6, bias=False)
    head.weight = embedding.weight  # tied, one storage
    model = torch.nn.ModuleDict({"embedding": embedding, "head": head})
    with record_run("EXP-001", seed=1, repo=tmp_path) as run:
        path = run.save_model(model)
        with pytest.raises(TypeError):
            run.save_model({"step": 3}, name="bad.safetensors")
        with pytest.raises(TypeError):
            run.save_model(object(), name="bad2.safetensors")
    from safetensors.torch import load_file
    loaded = load_file(path)
    assert torch.equal(loaded["embedding.weight"], loaded["head.weight"])


def test_seed_everything_seeds_every_generator(monkeypatch):
    numpy = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    draws = []
    for _ in range(2):
        assert seed_everything(123) == 123
        draws.append((random.random(), numpy.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    seed_everything(124)
    assert (random.random(), numpy.random.rand(), torch.rand(1).item()) != draws[0]
    assert os.environ["PYTHONHASHSEED"] == "124"


def test_children_inherit_the_hash_seed():
    seed_everything(99)
    code = "print(hash('aisdp'))"
    hashes = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout for _ in range(2)}
    assert len(hashes) == 1


@pytest.mark.parametrize("seed", [-1, 4294967296, 1.5, "42", True, None])
def test_seed_out_of_range_or_not_whole_is_refused(seed):
    with pytest.raises(ValueError):
        seed_everything(seed)


def test_seed_limits_accepted():
    assert seed_everything(0) == 0
    assert seed_everything(4294967295) == 4294967295


@pytest.mark.slow
def test_deterministic_mode_turns_on_deterministic_algorithms():
    pytest.importorskip("torch")
    code = ("import os, torch\n"
            "from aisdp_log.training import seed_everything\n"
            "seed_everything(5, deterministic=True)\n"
            "print(torch.are_deterministic_algorithms_enabled(), "
            "torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, "
            "os.environ['CUBLAS_WORKSPACE_CONFIG'])\n")
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=True)
    assert result.stdout.split() == ["True", "True", "False", ":4096:8"]


def test_works_without_torch(tmp_path):
    code = textwrap.dedent(f'''
        import json, random, sys
        sys.modules["torch"] = None          # as if torch were not installed
        import aisdp_log.training as training
        assert training.seed_everything(11, deterministic=True) == 11
        first = random.random()
        training.seed_everything(11)
        assert random.random() == first
        with training.record_run("EXP-001", seed=11, repo={str(tmp_path)!r}) as run:
            run.log_epoch(0, loss=0.5)
            run.log_metrics(accuracy=0.5)
            run.save_model(b"weights", name="model.bin")
        record = json.loads((run.artefact_dir / "run.json").read_text())
        print(json.dumps([record["status"], record["environment"]["torch"],
                          __import__("os").environ["CUBLAS_WORKSPACE_CONFIG"]]))
    ''')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["completed", None, ":4096:8"]


def test_importing_the_module_does_not_import_torch():
    code = ("import sys, aisdp_log.training, aisdp_log.record.environment\n"
            "print(sorted(m for m in ('torch', 'numpy', 'safetensors', 'click') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_lazy_names_on_the_package():
    import aisdp_log
    assert aisdp_log.seed_everything is seed_everything
    assert aisdp_log.record_run is record_run


@pytest.mark.slow
def test_data_version_of_several_dvc_outputs_is_the_commit(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"a.txt": "a"})
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    (repo / "train.csv").write_text("1,2\n")
    (repo / "extra").mkdir()
    (repo / "extra" / "test.csv").write_text("3,4\n")
    dvc(repo, "add", "-q", "train.csv", "extra/test.csv")
    head = commit(repo, message="data")
    # No `data` in aisdp.toml: every .dvc file in the repository counts.
    with record_run("EXP-001", seed=1, repo=repo) as run:
        run.save_model(b"m")
    assert [(d["source"], d["md5"]) for d in run.record["data"]] == [
        ("extra/test.csv.dvc", hashlib.md5(b"3,4\n").hexdigest()),
        ("train.csv.dvc", hashlib.md5(b"1,2\n").hexdigest())]
    assert run.record["data_version"] == head
    # A .dvc file changed since the commit: no commit pins the data, so no data version.
    (repo / "train.csv").write_text("1,2\n5,6\n")
    dvc(repo, "add", "-q", "train.csv")
    with record_run("EXP-002", seed=1, repo=repo) as run:
        run.save_model(b"m")
    assert run.record["data_version"] is None
    assert run.record["data"][1]["md5"] == hashlib.md5(b"1,2\n5,6\n").hexdigest()
    # Configured (by the out's path, as the validator allows): its one md5 is the version.
    (repo / "aisdp.toml").write_text('data = ["extra/test.csv"]\n')
    with record_run("EXP-003", seed=1, repo=repo) as run:
        run.save_model(b"m")
    assert run.record["data_version"] == hashlib.md5(b"3,4\n").hexdigest()
