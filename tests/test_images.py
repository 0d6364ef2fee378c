"""Container image entries without an engine (issue 23): parsing `image: NAME@sha256:<hex>`
(domain/images.py), S013 and G008 at the Environment cell, lock parsing that leaves image
digests alone, `record_run`'s `AISDP_IMAGE`, `add`, the `[rerun]` keys, the command line a
container run gets, and the commit read from a repository's files where git does not run.
The runs in a real engine are tests/test_rerun_image.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import assert_findings, commit, git, init_repo, row, run_cli, write_log

import aisdp_log
from aisdp_log.config import load_config
from aisdp_log.domain.images import image_entries
from aisdp_log.domain.locks import read_lock_entries
from aisdp_log.errors import AisdpLogError
from aisdp_log.record.add import environment_summary
from aisdp_log.record.environment import capture_environment, diff_environments
from aisdp_log.repo.gitparse import read_head
from aisdp_log.rerun.container import ContainerSpec, container_variables, gpu_options, image_entry
from aisdp_log.system.containers import Engine, owner_pid

HEX = "4f" * 32
ENVIRONMENT = "K"  # the Environment column of the builders' logs


# --------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text, name, tag, digest", [
    (f"image: ghcr.io/acme/train@sha256:{HEX}", "ghcr.io/acme/train", None, HEX),
    (f"image=localhost:5000/a/b:v1@sha256:{HEX.upper()}", "localhost:5000/a/b", "v1", HEX),
    (f"uv.lock sha256:{'1' * 64}; Image: python:3.11; python 3.11.2", "python", "3.11", None),
    (f"image: my_org/train-x.y__z@sha256:{HEX}", "my_org/train-x.y__z", None, HEX),
])
def test_well_formed_entries(text, name, tag, digest):
    [entry] = image_entries(text)
    assert (entry.name, entry.tag, entry.digest, entry.problem) == (name, tag, digest, None)


@pytest.mark.parametrize("text, problem", [
    ("image: ; python 3.11", "names no image"),
    (f"image: Acme/Train@sha256:{HEX}", "not a valid part"),
    ("image: acme/train@sha256:1234", "is not a digest"),
    (f"image: acme/train@md5:{HEX}", "is not a digest"),
    (f"image: acme/train:-bad@sha256:{HEX}", "not a valid image tag"),
    (f"image: acme//train@sha256:{HEX}", "not a valid part"),
])
def test_malformed_entries_say_why(text, problem):
    [entry] = image_entries(text)
    assert entry.problem is not None and problem in entry.problem


def test_no_entry_in_other_words():
    assert image_entries("python 3.11; myimage: x; torch 2.13.0") == []
    assert image_entries(None) == []


def test_an_image_digest_is_not_a_lock_files_hash():
    lock = "1" * 64
    entries, unplaced = read_lock_entries(f"uv.lock sha256:{lock}; image: a/b@sha256:{HEX}")
    assert entries == [("uv.lock", lock)] and unplaced == []
    # a digest outside an image entry is still G007's: nothing checks it
    assert read_lock_entries(f"python@sha256:{HEX}")[1] == [f"python@sha256:{HEX}"]


# --------------------------------------------------------------------------- validation

def test_s013_and_g008_at_the_environment_cell_offline(tmp_path):
    log = write_log(tmp_path / "log.xlsx", [
        row(experiment_id="EXP-001", environment=f"image: ghcr.io/acme/train@sha256:{HEX}"),
        row(experiment_id="EXP-002", environment="image: ghcr.io/acme/train:2026-12"),
        row(experiment_id="EXP-003", environment="image: Acme/Train@sha256:12; python 3.11"),
        row(experiment_id="EXP-004", environment=f"python 3.11; image=a@sha256:{HEX}")])
    report = aisdp_log.validate(log, offline=True)
    assert_findings(report, [("G008", f"{ENVIRONMENT}3"), ("S013", f"{ENVIRONMENT}4")],
                    ("S013", "G008", "G009", "G007"))
    severities = {f.code: f.severity.value for f in report.findings}
    assert severities["S013"] == "error" and severities["G008"] == "warning"


def test_without_remote_no_engine_is_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no engine, no git: --offline needs neither
    log = write_log(tmp_path / "log.xlsx", [row(environment=f"image: a/b@sha256:{HEX}")])
    result = run_cli("validate", str(log), "--offline", "--remote", "--format", "json")
    assert "G009" not in result.stdout


# --------------------------------------------------------------------------- recording

def test_record_run_records_aisdp_image_first_in_the_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("AISDP_IMAGE", f"image: ghcr.io/acme/train@sha256:{HEX}")
    env = capture_environment(tmp_path)
    assert env["image"] == f"ghcr.io/acme/train@sha256:{HEX}"
    assert env["summary"].startswith(f"image: ghcr.io/acme/train@sha256:{HEX}; python ")
    monkeypatch.delenv("AISDP_IMAGE")
    other = capture_environment(tmp_path)
    assert other["image"] is None and "image" not in other["summary"]
    assert f"container image: ghcr.io/acme/train@sha256:{HEX} → (none)" in \
        diff_environments(env, other)


def test_add_names_the_image_even_when_the_summary_lacks_it():
    image = f"a/b@sha256:{HEX}"
    assert environment_summary({"summary": "python 3.11.2", "image": image}) == \
        f"image: {image}; python 3.11.2"
    assert environment_summary({"summary": f"image: {image}; python 3.11.2", "image": image}) \
        == f"image: {image}; python 3.11.2"


def test_the_commit_is_read_from_the_files_where_git_does_not_run(tmp_path, monkeypatch):
    from aisdp_log.record.provenance import git_state

    repo = init_repo(tmp_path / "repo")
    sha = commit(repo, {"a.txt": "a"})
    assert read_head(repo) == sha
    git(repo, "pack-refs", "--all")  # the ref only in packed-refs
    (repo / "sub").mkdir()
    assert read_head(repo / "sub") == sha
    git(repo, "checkout", "-q", "--detach")
    assert read_head(repo) == sha
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_state(repo) == (sha, None)  # the commit; whether it had changes is unknown


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("table, words", [
    ('engine = "rkt"', "rerun.engine"), ('network = "a b"', "rerun.network")])
def test_bad_rerun_keys_are_one_line_errors(tmp_path, table, words):
    (tmp_path / "aisdp.toml").write_text(f"[rerun]\n{table}\n")
    with pytest.raises(AisdpLogError, match=words):
        load_config(tmp_path)


def test_rerun_keys_are_read(tmp_path):
    (tmp_path / "aisdp.toml").write_text('[rerun]\nengine = "docker"\nnetwork = "bridge"\n')
    rerun = load_config(tmp_path).rerun
    assert (rerun.engine, rerun.network) == ("docker", "bridge")
    assert load_config(tmp_path / "none").rerun.network == "none"


# --------------------------------------------------------------------------- the run's command

def test_gpus_as_each_engine_takes_them():
    assert gpu_options("docker", 2) == ["--gpus", "2"]
    assert gpu_options("docker", 2, ["1", "3"]) == ["--gpus", '"device=1,3"']
    assert gpu_options("podman", 2) == ["--device", "nvidia.com/gpu=0",
                                        "--device", "nvidia.com/gpu=1"]
    assert gpu_options("podman", 1, ["GPU-5f1c"]) == ["--device", "nvidia.com/gpu=GPU-5f1c"]
    assert gpu_options("podman", 0) == []


def test_a_runs_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.setenv("SECRET_TOKEN", "not for the container")
    image = f"a/b@sha256:{HEX}"
    spec = ContainerSpec(Engine("podman", "/usr/bin/podman", "4.3.1"), image,
                         tool=Path("/x/aisdp_log"), gpus=1,
                         mounts=[(tmp_path / "cache", True)],
                         image_env={"PYTHONPATH": "/app", "PATH": "/usr/bin"})
    variables = container_variables(dict(os.environ, AISDP_SEED="7",
                                         CUDA_VISIBLE_DEVICES="2"), image)
    argv = spec.argv(["python", "train.py"], tmp_path / "tree", tmp_path / "run", variables,
                     "aisdp-rerun-h-1-abc", devices=["2"])
    assert argv[:3] == ["/usr/bin/podman", "run", "--rm"]
    assert argv[-3:] == [image, "python", "train.py"]
    pairs = set(zip(argv, argv[1:]))
    assert ("--network", "none") in pairs and ("-w", str(tmp_path / "tree")) in pairs
    assert ("-v", f"{tmp_path / 'tree'}:{tmp_path / 'tree'}") in pairs
    assert ("-v", f"{tmp_path / 'cache'}:{tmp_path / 'cache'}:ro") in pairs
    assert ("-v", "/x/aisdp_log:/opt/aisdp-log/aisdp_log:ro") in pairs
    assert ("--user", f"{os.getuid()}:{os.getgid()}") in pairs
    assert ("--device", "nvidia.com/gpu=2") in pairs
    passed = {argv[i + 1] for i, word in enumerate(argv) if word == "-e"}
    assert {"AISDP_SEED=7", f"AISDP_IMAGE={image}", "MKL_CBWR=AVX2",
            "PYTHONPATH=/opt/aisdp-log:/app", "HOME=/tmp"} <= passed
    assert not any(value.startswith(("SECRET_TOKEN", "CUDA_VISIBLE")) for value in passed)
    assert any(word.startswith("aisdp-log.rerun=") for word in argv)


def test_the_refusals_of_a_row_without_a_pinned_image():
    with pytest.raises(AisdpLogError, match="names none"):
        image_entry("EXP-001", "python 3.11.2")
    with pytest.raises(AisdpLogError, match="by tag"):
        image_entry("EXP-001", "image: python:3.11")
    with pytest.raises(AisdpLogError, match="2 images"):
        image_entry("EXP-001", f"image: a@sha256:{HEX}; image: b@sha256:{HEX}")
    assert image_entry("EXP-001", f"image: a:1@sha256:{HEX}").pinned == f"a@sha256:{HEX}"


def test_container_names_carry_host_and_pid():
    from aisdp_log.system.containers import container_name

    name = container_name("abc123")
    assert owner_pid(name) == os.getpid()
    assert owner_pid("aisdp-rerun-otherhost-12-abc") is None
    assert owner_pid("someone-else") is None

