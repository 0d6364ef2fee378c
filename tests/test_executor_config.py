"""`[rerun] executor`, `[rerun] gpus` and `[rerun.slurm]`: parsed with one-line errors, mapped onto
`sbatch` options as documented; the checks that need no cluster (`--detach` without Slurm,
`--collect` with rows, the file system of a folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import run_cli

from aisdp_log.config import SlurmConfig, load_config
from aisdp_log.errors import ConfigError
from aisdp_log.rerun.slurm import file_system, sbatch_options


def config(tmp_path: Path, text: str):
    (tmp_path / "aisdp.toml").write_text(text)
    return load_config(tmp_path)


def test_defaults_are_local_with_no_device_pool(tmp_path):
    rerun = config(tmp_path, '[rerun]\ncommand = ["python", "train.py"]\n').rerun
    assert (rerun.executor, rerun.gpus, rerun.slurm) == ("local", 0, SlurmConfig())


def test_the_slurm_table_maps_onto_sbatch_options(tmp_path):
    rerun = config(tmp_path, '''
[rerun]
executor = "slurm"
gpus = 2

[rerun.slurm]
partition = "gpu"
cpus_per_run = 8
mem = "32G"
time = "04:00:00"
account = "ml-team"
sbatch_args = ["--qos=normal", "--constraint", "a100"]
''').rerun
    assert rerun.executor == "slurm"
    assert sbatch_options(rerun.slurm, rerun.gpus) == [
        "--partition=gpu", "--account=ml-team", "--mem=32G", "--time=04:00:00",
        "--cpus-per-task=8", "--gres=gpu:2"]
    assert rerun.slurm.sbatch_args == ("--qos=normal", "--constraint", "a100")
    assert sbatch_options(SlurmConfig(gpus_per_run=1), 2) == ["--gres=gpu:1"]
    assert sbatch_options(SlurmConfig(gpus_per_run=0), 2) == []
    assert sbatch_options(SlurmConfig(), 0) == []


@pytest.mark.parametrize("text, message", [
    ('[rerun]\nexecutor = "kubernetes"\n', "rerun.executor must be one of local, slurm"),
    ('[rerun]\ngpus = -1\n', "rerun.gpus must be a whole number"),
    ('[rerun]\ngpus = true\n', "rerun.gpus must be a whole number"),
    ('[rerun.slurm]\nqueue = "gpu"\n', "rerun.slurm: unknown key 'queue'"),
    ('[rerun.slurm]\nsbatch_args = "--qos=high"\n', "never a shell string"),
    ('[rerun.slurm]\npartition = "gpu a100"\n', "rerun.slurm.partition must be one word"),
    ('[rerun.slurm]\ncpus_per_run = 2.5\n', "rerun.slurm.cpus_per_run must be a whole number"),
    ('[rerun]\nslurm = 3\n', "[rerun.slurm] must be a table"),
])
def test_bad_settings_are_one_line_errors_naming_the_file(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        config(tmp_path, text)
    assert message in str(raised.value) and str(tmp_path / "aisdp.toml") in str(raised.value)
    assert "\n" not in str(raised.value)


def test_file_system_of_a_folder():
    assert file_system(Path("/proc")) == "proc"
    if Path("/dev/shm").is_dir():
        assert file_system(Path("/dev/shm")) == "tmpfs"


def test_collect_and_status_take_only_the_log(tmp_path):
    log = tmp_path / "log.xlsx"
    log.write_bytes(b"")
    for args in (["--collect", "--id", "EXP-001"], ["--status", "--flagged"],
                 ["--collect", "--status"], ["--collect", "--detach"]):
        result = run_cli("rerun", str(log), *args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("rerun", str(log), "--status", cwd=tmp_path)
    assert result.returncode == 0 and "no pending Slurm submission" in result.stdout
