"""A validation replayed from `.aisdp-log/results/` (aisdp_log/lint/results.py) says exactly
what a fresh one says, and only when nothing it read has changed.

On a real trained DVC project (tests/dvc_projects.py: git history, `dvc repro`, the DVC cache,
params, an artefact folder), each test changes one thing a user or a tool changes between two
validations, then compares the replayed report with the report of a validation that had no
store to replay (the truth). `test_every_file_touched_is_an_input` runs a validation under
`strace` and fails for any file in the project or the git configuration that the process or
its git children touched and the stored inputs do not cover.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import commit, git, write_log
from dvc_projects import HEADERS, METRIC_ROWS, faithful_row

from aisdp_log.lint import results
from aisdp_log.system import inputs as seal_inputs
from aisdp_log.system import seal
from aisdp_log.system.seal import read_sealed, write_sealed

pytestmark = pytest.mark.skipif(os.name == "nt", reason="strace and POSIX file modes")

#: Longer than the racy window (inputs.RACY_NS): a store made after this rests on settled stats.
SETTLE_S = 0.12


def log_of(project: dict, **changes) -> Path:
    return write_log(project["root"] / "experiment-log.xlsx", [faithful_row(project, **changes)],
                     headers=HEADERS, metrics=METRIC_ROWS)


def validate(root: Path, *extra: str, fresh: bool = False) -> dict:
    """`aisdp-log validate experiment-log.xlsx --format json` as a process in `root`: the JSON
    report, the exit code and whether the report was replayed (no workbook reader imported).
    `fresh`: with no store to replay (the truth to compare with)."""
    if fresh:
        shutil.rmtree(root / ".aisdp-log" / results.STORE_DIR, ignore_errors=True)
    probe = ("import sys, runpy\n"
             "sys.argv = ['aisdp-log', 'validate', 'experiment-log.xlsx', '--format', 'json',"
             " *sys.argv[1:]]\n"
             "try:\n"
             "    runpy.run_module('aisdp_log', run_name='__main__')\n"
             "except SystemExit as exc:\n"
             "    code = exc.code\n"
             "print('REPLAYED' if 'aisdp_log.workbook.reader' not in sys.modules else 'RAN')\n"
             "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe, *extra], cwd=root, capture_output=True,
                          text=True)
    *report, how = done.stdout.strip().splitlines()
    assert done.stderr == "", done.stderr
    return {"report": json.loads("\n".join(report)), "code": done.returncode,
            "replayed": how == "REPLAYED"}


def stored_runs(root: Path) -> list[Path]:
    """The files of the runs stored for the repository at `root`."""
    return sorted((root / ".aisdp-log" / results.STORE_DIR).glob("*.json"))


def stored(root: Path) -> bool:
    return bool(stored_runs(root))


def the_stored_run(root: Path) -> Path:
    (path,) = stored_runs(root)
    return path


@pytest.fixture(autouse=True)
def own_cache_folder(tmp_path, monkeypatch):
    """The user's cache folder, where the key sealing stored reports lives, of this test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache"


@pytest.fixture
def project(getstarted: dict) -> dict:
    log_of(getstarted)
    time.sleep(SETTLE_S)
    return getstarted


def test_replay_says_what_a_fresh_validation_says(project):
    root = project["root"]
    first = validate(root)
    assert not first["replayed"] and stored(root)
    again = validate(root)
    assert again["replayed"]
    assert again["report"] == first["report"] and again["code"] == first["code"]
    assert again["report"]["summary"]["coverage"]["verified"] > 0
    # text and github formats render the replayed report as they render a fresh one
    for output in ("text", "github"):
        replayed, was_replayed = shown(root, output)
        assert was_replayed
        shutil.rmtree(root / ".aisdp-log" / results.STORE_DIR)
        truth, _ = shown(root, output)
        assert replayed == truth
        assert shown(root, output) == (truth, True)


def shown(root: Path, output: str) -> tuple[tuple[int, str], bool]:
    """(exit code, stdout) of `validate --format OUTPUT` as a process (launched with `-c`, so
    the current folder is not on the import path), and whether it replayed."""
    probe = ("import sys, runpy\n"
             "sys.argv = ['aisdp-log', 'validate', 'experiment-log.xlsx', '--format', "
             f"{output!r}]\n"
             "try:\n"
             "    runpy.run_module('aisdp_log', run_name='__main__')\n"
             "finally:\n"
             "    print('aisdp_log.workbook.reader' not in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                          text=True)
    return (done.returncode, done.stdout), done.stderr.strip().endswith("True")


def _overwrite_in_place(project):
    """A model rewritten with bytes of the same size and its mtime put back (torch.save over
    the same path, then a tool restoring timestamps): only ctime and content move."""
    model = project["folder"] / "model.pkl"
    info = model.stat()
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    with open(model, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(model, ns=(info.st_atime_ns, info.st_mtime_ns))


def _add_file(project):
    (project["folder"] / "optimizer.pt").write_bytes(b"state")


def _edit_run_json(project):
    path = project["folder"] / "run.json"
    run = json.loads(path.read_text())
    run["seed"] = 7
    path.write_text(json.dumps(run))


def _orphan_folder(project):
    (project["root"] / "artefacts" / "EXP-999").mkdir()
    (project["root"] / "artefacts" / "EXP-999" / "model.pkl").write_bytes(b"m")


def _drop_cached_data(project):
    cache = project["root"] / ".dvc" / "cache"
    md5 = project["md5"]
    for path in cache.rglob("*"):
        if path.is_file() and path.name.startswith(md5[2:]):
            path.chmod(0o644)
            path.unlink()


def _rewrite_history(project):
    """The row's commit no longer reachable from any ref: a new root commit replaces main."""
    root = project["root"]
    git(root, "checkout", "-q", "--orphan", "replaced")
    commit(root, {"README.md": "rewritten\n"}, message="rewritten")
    git(root, "branch", "-D", "main")
    for tag in git(root, "tag").split():
        git(root, "tag", "-d", tag)


def _new_config(project):
    (project["root"] / "aisdp.toml").write_text('id_pattern = "^RUN-[0-9]+$"\n')


def _remove_params(project):
    """The work tree's params file (the params family reads the committed one; whether the
    work tree has one decides whether it runs at all)."""
    (project["root"] / "params.yaml").unlink()


def _git_config(project):
    """A setting in the repository's git config (no finding depends on it: a miss, not a
    different report, is what is asked)."""
    git(project["root"], "config", "aisdp.test", "1")


CHANGES = {"model overwritten in place": _overwrite_in_place, "file added": _add_file,
           "run.json edited": _edit_run_json, "orphan folder": _orphan_folder,
           "DVC cache object removed": _drop_cached_data, "history rewritten": _rewrite_history,
           "aisdp.toml written": _new_config, "params.yaml removed": _remove_params,
           "git config": _git_config}


#: Changes that must make the run start afresh though no finding depends on them here.
MISS_ONLY = ("git config", "params.yaml removed")


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_is_seen(project, change):
    root = project["root"]
    before = validate(root)
    assert stored(root)
    CHANGES[change](project)
    after = validate(root)
    assert not after["replayed"], f"{change}: the old report was replayed"
    truth = validate(root, fresh=True)
    assert after["report"] == truth["report"] and after["code"] == truth["code"]
    if change not in MISS_ONLY:
        assert truth["report"] != before["report"], f"{change} changes no finding"


def test_an_edited_cell_is_seen(project):
    root = project["root"]
    validate(root)
    log_of(project, **{"Random seed": 43})
    after = validate(root)
    assert not after["replayed"]
    assert "A004" in {f["code"] for f in after["report"]["findings"]} or \
        after["report"] == validate(root, fresh=True)["report"]


def test_options_and_environment_are_part_of_the_key(project):
    root = project["root"]
    validate(root)
    assert validate(root)["replayed"]
    offline = validate(root, "--offline")
    assert not offline["replayed"]
    assert offline["report"]["summary"]["coverage"] != \
        validate(root)["report"]["summary"]["coverage"]
    os.environ["AISDP_RESULTS_TEST"] = "1"
    try:
        assert not validate(root)["replayed"]
    finally:
        del os.environ["AISDP_RESULTS_TEST"]


def test_a_racy_input_keeps_the_run_from_being_stored(project):
    from aisdp_log.lint.runner import validate as validate_here

    root = project["root"]
    # changed a moment before the run starts: a write later in the same timestamp tick would
    # leave its stat as it is, so no stored result may rest on it
    (project["folder"] / "metrics.json").touch()
    validate_here(root / "experiment-log.xlsx", repo=root)
    assert not stored(root)
    time.sleep(SETTLE_S)
    validate(root)
    assert stored(root) and validate(root)["replayed"]


def test_a_symlink_in_an_artefact_folder_is_never_replayed(project):
    root = project["root"]
    shared = root / "artefacts" / "shared.bin"
    shared.write_bytes(b"weights")
    (project["folder"] / "extra.bin").symlink_to(shared)
    log_of(project, **{"Artefact hash": None})
    time.sleep(SETTLE_S)
    validate(root)
    assert not stored(root)


def test_a_damaged_store_is_ignored(project):
    root = project["root"]
    truth = validate(root)
    store = the_stored_run(root)
    data = json.loads(read_sealed(store))
    data["report"]["findings"] = "not a list"
    write_sealed(store, json.dumps(data).encode())  # sealed by this user, yet no report
    replayed = validate(root)
    assert not replayed["replayed"] and replayed["report"] == truth["report"]
    write_sealed(store, b"{not json")
    assert validate(root)["report"] == truth["report"]
    store.write_text("{not json")  # not sealed at all
    assert validate(root)["report"] == truth["report"]


# ------------------------------------------------------------------------------- strace

STRACE = shutil.which("strace")
#: syscall(dirfd, "path" ...: with `strace -y` the dirfd reads `AT_FDCWD</cwd>` or `3</dir>`
CALL = re.compile(r'^(\d+) +(\w+)\((?:AT_FDCWD(?:<([^>]*)>)?|-?\d+<([^>]*)>|-?\d+)?,? ?'
                  r'"([^"]*)"')


#: The syscalls whose quoted argument is a path the process looks at.
PATH_CALLS = frozenset({"open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat",
                        "fstatat64", "statx", "access", "faccessat", "faccessat2", "readlink",
                        "readlinkat", "getxattr", "lgetxattr", "listxattr", "llistxattr"})


def touched(trace: Path, cwd: Path) -> dict[str, tuple[str, bool]]:
    """Every path a syscall of the trace names -> (the first syscall naming it, whether the
    traced Python process itself made it, not a git child)."""
    found: dict[str, tuple[str, bool]] = {}
    first_pid = None
    for line in trace.read_text(errors="replace").splitlines():
        match = CALL.match(line)
        if match is None:
            continue
        pid, call, cwd_shown, base, name = match.groups()
        first_pid = first_pid or pid
        if not name or call not in PATH_CALLS:
            continue
        path = os.path.normpath(os.path.join(base or cwd_shown or str(cwd), name))
        found.setdefault(path, (call, pid == first_pid))
    return found


def _nearest_existing(path: Path) -> str:
    while not os.path.lexists(path):
        path = path.parent
    return str(path)


def uncovered_paths(trace: Path, cwd: Path, watched: Path, log: Path, repo: Path) -> list[str]:
    """The paths under `watched` the trace touched that the inputs of the one run stored for
    `repo` do not cover, as `syscall relative/path` (a path whose identity alone is stored, a
    folder on the way to the artefacts, counts as covered)."""
    data = json.loads(read_sealed(the_stored_run(repo)))
    inputs = {path.removeprefix(seal_inputs.IDENTITY) for path in results._paths(repo, data)}
    ancestors = {str(parent) for path in inputs for parent in Path(path).parents}
    uncovered = []
    for path, (call, python) in sorted(touched(trace, cwd).items()):
        inside = Path(path)
        if watched not in inside.parents:
            continue
        relative = inside.relative_to(watched).as_posix()
        if path in inputs or path in ancestors or path == str(log):
            continue
        if not os.path.lexists(path) and _nearest_existing(inside) in inputs:
            continue  # absent: creating it adds an entry to a folder whose stat is stored
        if ".aisdp-log" in inside.parts or "user-cache" in inside.parts:
            continue  # the tool's own caches, and the key that seals the stored reports
        parts = inside.parts
        if "objects" in parts and ".git" in parts[:parts.index("objects")] and \
                str(inside.parent) in inputs:
            continue  # an object or pack named by its hash: present while its folder says so
        if python and inside.parent == cwd and call in ("newfstatat", "statx", "openat") and \
                not inside.exists() and re.fullmatch(r"[\w.-]+", inside.name) and \
                (inside.suffix in ("", ".py", ".pyc", ".so", ".pth") or "cpython" in
                 inside.name or inside.name.startswith("__editable__")):
            continue  # `python -m` looking for modules in the current folder
        uncovered.append(f"{call} {relative}")
    return uncovered


def _plain(project: dict, tmp_path: Path) -> tuple[Path, Path]:
    """The trained project as it is, an orphan folder and a nested model folder added."""
    root = project["root"]
    (root / "artefacts" / "EXP-002").mkdir()  # an orphan: the root's listing is read
    nested = project["folder"] / "tokenizer"  # a subfolder of the model: walked too
    nested.mkdir()
    (nested / "vocab.txt").write_text("a\nb\n")
    return root, log_of(project)


def _worktree(project: dict, tmp_path: Path) -> tuple[Path, Path]:
    """A linked work tree (`.git` is a file) with packed refs and tags named with `@` and
    `#`, the log and its `aisdp.toml` in a subfolder, the artefacts elsewhere."""
    main = project["root"]
    git(main, "tag", "v1@2026#rc")
    git(main, "pack-refs", "--all")
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", str(linked), "HEAD")
    shutil.copytree(main / "artefacts", linked / "models")
    shutil.copytree(main / ".dvc" / "cache", linked / ".dvc" / "cache")
    (linked / "logs").mkdir()
    (linked / "logs" / "aisdp.toml").write_text('artefacts = "models"\n')
    log = write_log(linked / "logs" / "experiment-log.xlsx", [faithful_row(project)],
                    headers=HEADERS, metrics=METRIC_ROWS)
    return linked / "logs", log


def _dvc_directory(project: dict, tmp_path: Path) -> tuple[Path, Path]:
    """A second row whose data version is a directory DVC tracks (a `.dir` manifest whose
    files the cache must hold)."""
    import yaml
    from dvc_projects import dvc

    root = project["root"]
    images = root / "data" / "images"
    images.mkdir()
    for index in range(3):
        (images / f"{index}.png").write_bytes(bytes([index]) * 64)
    dvc(root, "add", "-q", "data/images")
    sha = commit(root, message="add images", date="2026-07-03T09:00:00+00:00")
    md5 = yaml.safe_load((root / "data" / "images.dvc").read_text())["outs"][0]["md5"]
    folder = root / "artefacts" / "EXP-002"
    shutil.copytree(project["folder"], folder)
    run = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps(dict(run, experiment_id="EXP-002",
                                                     commit=sha, data_version=md5)))
    rows = [faithful_row(project), faithful_row(project, **{
        "Experiment ID": "EXP-002", "Code commit": sha[:10], "Data version": md5[:8]})]
    return root, write_log(root / "experiment-log.xlsx", rows, headers=HEADERS,
                           metrics=METRIC_ROWS)


SHAPES = {"plain": _plain, "worktree": _worktree, "dvc directory": _dvc_directory}


@pytest.mark.skipif(STRACE is None, reason="strace is not installed (apt-get install strace)")
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_file_touched_is_an_input(getstarted, tmp_path, shape):
    cwd, log = SHAPES[shape](getstarted, tmp_path)
    cwd, log = cwd.resolve(), log.resolve()
    time.sleep(SETTLE_S)
    trace = tmp_path / "trace.txt"
    done = subprocess.run([STRACE, "-f", "-qq", "-y", "-o", str(trace), "-e",
                           "trace=%file,%desc", sys.executable, "-m", "aisdp_log", "validate",
                           log.name, "--format", "json"], cwd=cwd, capture_output=True,
                          text=True, check=False)
    report = json.loads(done.stdout)
    assert report["rows"] >= 1 and report["summary"]["coverage"]["verified"] > 0
    repo = Path(git(cwd, "rev-parse", "--show-toplevel")).resolve()
    assert stored(repo), "the run was not stored"
    uncovered = uncovered_paths(trace, cwd, tmp_path.resolve(), log, repo)
    assert not uncovered, "touched but not stored as inputs:\n" + "\n".join(uncovered)
    # and the replay of that run is the report itself
    again = subprocess.run([sys.executable, "-m", "aisdp_log", "validate", log.name,
                            "--format", "json"], cwd=cwd, capture_output=True, text=True)
    assert json.loads(again.stdout) == report


def test_signatures_checked_with_ssh_keygen_are_never_replayed(tmp_path):
    """ssh-keygen's verdict depends on the time for a key with a validity window, and on the
    program: a log whose sign-offs were checked against allowed signers runs afresh."""
    from signoffs import ssh_signed_project

    from aisdp_log.lint.runner import validate as validate_here

    signed = ssh_signed_project(tmp_path)
    time.sleep(SETTLE_S)
    # the review's own validation, before the sign-off existed, was stored: forget it
    shutil.rmtree(signed.project.repo / ".aisdp-log" / results.STORE_DIR, ignore_errors=True)
    first = validate_here(signed.log, repo=signed.project.repo)
    assert not stored(signed.project.repo)
    again = validate_here(signed.log, repo=signed.project.repo)
    assert again.to_dict() == first.to_dict()


def test_path_keys_agree_with_path_key(tmp_path):
    from aisdp_log.system import inputs

    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    paths = [str(tmp_path / name) for name in ("file", "folder", "link", "dangling", "absent")]
    paths += [inputs.IDENTITY + str(tmp_path / "folder"), inputs.IDENTITY + str(tmp_path / "link")]
    keys = inputs.path_keys(paths)
    assert keys == [inputs.path_key(path) for path in paths]
    assert keys[4] == inputs.ABSENT and keys[3].endswith(">" + inputs.ABSENT)
    assert keys[2] != keys[0] and ">" in keys[2]
    assert keys[6].endswith(">" + str(tmp_path / "file"))
    (tmp_path / "folder" / "entry").write_text("x")  # a folder's identity ignores its entries
    assert inputs.path_keys(paths[5:6]) == keys[5:6] and inputs.path_keys(paths[1:2]) != keys[1:2]
    keys = inputs.path_keys(paths)
    with pytest.raises(inputs.Racy):  # written just now: within a tick of a run starting now
        inputs.path_keys(paths, since_ns=time.time_ns())
    time.sleep(SETTLE_S)
    assert inputs.path_keys(paths, since_ns=time.time_ns()) == keys


def test_an_artefacts_link_pointed_elsewhere_is_seen(project):
    """`artefacts` as a symlink to a larger disk: the folders are read at their real paths,
    so pointing the link at another copy must still start the checks afresh."""
    root = project["root"]
    disk_a, disk_b = root.parent / "disk-a", root.parent / "disk-b"
    shutil.move(root / "artefacts", disk_a)
    shutil.copytree(disk_a, disk_b)
    (disk_b / "EXP-001" / "model.pkl").write_bytes(b"another model")
    (root / "artefacts").symlink_to(disk_a)
    time.sleep(SETTLE_S)
    before = validate(root)
    assert stored(root) and validate(root)["replayed"]
    link = root / "artefacts"
    link.unlink()
    link.symlink_to(disk_b)
    after = validate(root)
    assert not after["replayed"]
    assert "A002" in {f["code"] for f in after["report"]["findings"]}
    assert after["report"] == validate(root, fresh=True)["report"] != before["report"]


def test_a_report_edited_in_the_store_is_never_replayed(project, own_cache_folder):
    """Anyone who can write to the repository can write `.aisdp-log/results/`: a clean
    report put in the place of one with findings must not be believed."""
    root = project["root"]
    log_of(project, **{"Random seed": 43})  # run.json says 42: a finding
    time.sleep(SETTLE_S)
    truth = validate(root)
    assert truth["report"]["findings"] and validate(root)["replayed"]
    store = the_stored_run(root)
    seal_line, _, body = store.read_bytes().partition(b"\n")
    data = json.loads(body)
    data["report"]["findings"] = []
    store.write_bytes(seal_line + b"\n" + json.dumps(data).encode())  # the old seal kept
    forged = validate(root)
    assert not forged["replayed"] and forged["report"] == truth["report"]
    # a store sealed by another user's key (or none) is not believed either
    assert validate(root)["replayed"]
    key = own_cache_folder / "aisdp-log" / seal.KEY_NAME
    assert key.stat().st_mode & 0o077 == 0  # readable by the user alone
    key.write_bytes(os.urandom(seal.KEY_BYTES))
    assert not validate(root)["replayed"]
    key.unlink()
    assert not validate(root)["replayed"] and key.is_file() and validate(root)["replayed"]


def test_a_digest_planted_for_a_swapped_model_is_not_believed(project):
    """The attack the digest cache invites: swap the model, then write its new stat beside the
    old digest into `.aisdp-log/hashes.json`, drop the other stores, and keep the old seal."""
    root = project["root"]
    first = validate(root)
    assert "A002" not in {f["code"] for f in first["report"]["findings"]}
    model = project["folder"] / "model.pkl"
    model.write_bytes(b"a backdoored model")
    tools = root / ".aisdp-log"
    shutil.rmtree(tools / results.STORE_DIR)
    (tools / "verdicts.json").unlink()
    seal_line, _, body = (tools / "hashes.json").read_bytes().partition(b"\n")
    data = json.loads(body)
    digests = data["digests"]
    where = digests.index("artefacts/EXP-001/model.pkl")
    info = model.stat()
    digests[where + 1] = f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}:{info.st_ctime_ns}"
    (tools / "hashes.json").write_bytes(seal_line + b"\n" + json.dumps(data).encode())
    after = validate(root)
    assert "A002" in {f["code"] for f in after["report"]["findings"]}


def test_a_killed_store_leaves_nothing_behind_for_long(project):
    """A validation killed while writing its run leaves a temp file; the next store removes
    it (its pid is gone), keeps a live writer's, and keeps at most MAX_RESULTS runs."""
    root = project["root"]
    validate(root)
    folder = root / ".aisdp-log" / results.STORE_DIR
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    killed = folder / f".{'a' * 64}.json.{dead}-k1ll3d.tmp"
    live = folder / f".{'b' * 64}.json.{os.getpid()}-l1v3ab.tmp"
    killed.write_bytes(b"half")
    live.write_bytes(b"being written")
    for index in range(results.MAX_RESULTS + 2):  # other options: other runs stored
        os.environ["AISDP_RESULTS_TEST"] = str(index)
        try:
            validate(root)
        finally:
            del os.environ["AISDP_RESULTS_TEST"]
    assert not killed.exists() and live.exists()
    assert len(stored_runs(root)) == results.MAX_RESULTS
