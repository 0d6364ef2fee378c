"""Kill every write command with SIGKILL at many moments; count what survives and what stays.

For each command (`add`, `rerun` and its write-back, `review --sign`, `template --force`) the
script times an unkilled run on a fresh copy of a small real project (git + DVC, a training
command without torch: tests/test_guard.py's `tiny_rerun_project`), then, for each trial, on
another fresh copy: starts the command, sends SIGKILL to the aisdp-log process at
`duration * (i + 0.5) / trials` (spread over the whole run), and looks at

- the log: the original bytes (intact), a complete new version (opens in openpyxl and
  calamine and holds what the command adds; for `template`: the exact template bytes), or
  anything else (corrupt);
- orphan processes: anything the killed command started (found by a marker in the
  environment) still running 3 s after the kill;
- leftovers after the next command (the same command run again, unkilled, which must
  succeed): temp and lock files (in `.aisdp-log/` or beside the log), registered git
  worktrees, folders in the command's private TMPDIR (worktrees, openpyxl temps), rerun
  folders still marked running, and anything untracked that `git status` shows.

    python benchmarks/torture_writes.py [--trials 100] [--commands add,rerun,review,template]
    python benchmarks/torture_writes.py --quick   # one kill per command (CI: it cannot rot)

Needs the `test` and `dvc` extras (the project is tests/test_guard.py's, which imports pytest).

Linux only (/proc is read to find orphans).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

COMMANDS = ("add", "rerun", "review", "template")


@dataclass
class Tally:
    command: str
    duration_s: float = 0.0
    trials: int = 0
    killed: int = 0
    intact: int = 0
    complete: int = 0
    corrupt: int = 0
    next_failed: int = 0
    leftovers: dict[str, int] = field(default_factory=lambda: {
        "temp files": 0, "lock files": 0, "worktrees": 0, "temp dirs": 0,
        "running marks": 0, "git-visible": 0})
    orphans: int = 0
    leftover_trials: int = 0
    notes: list[str] = field(default_factory=list)


def run_env(trial_tmp: Path, marker: str) -> dict:
    env = dict(os.environ, TMPDIR=str(trial_tmp), AISDP_TORTURE_MARK=marker,
               DVC_NO_ANALYTICS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def argv(command: str, root: Path, log: Path, second: bool = False) -> list[str]:
    base = [sys.executable, "-m", "aisdp_log"]
    if command == "add":
        return [*base, "add", str(log), "EXP-003" if second else "EXP-002"]
    if command == "rerun":
        return [*base, "rerun", str(log), "--id", "EXP-001", "--mode", "bitwise"]
    if command == "review":
        return [*base, "review", str(log), "--sign", "Ana Lima, Lead", "-o",
                str(root / "reviews")]
    return [*base, "template", "-o", str(log), "--force"]


def build_base(folder: Path) -> tuple[Path, Path]:
    from test_guard import tiny_rerun_project

    root, log = tiny_rerun_project(folder)
    for experiment_id in ("EXP-002", "EXP-003"):
        env = dict(os.environ, AISDP_EXPERIMENT_ID=experiment_id, AISDP_SEED="7")
        env.pop("AISDP_ARTEFACT_DIR", None)
        subprocess.run([sys.executable, "train.py"], cwd=root, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit",
                    "-q", "-m", "log"], cwd=root, check=True, capture_output=True)
    return root, log


def fresh_copy(base_root: Path, target: Path) -> tuple[Path, Path]:
    shutil.copytree(base_root, target, symlinks=True)
    return target, target / "experiment-log.xlsx"



def describe(pid: int) -> str:
    """`pid ppid command line` of a live process, for the notes."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} (parent {ppid}): {command.strip()[:160]}"


def opens(log: Path) -> list[str] | None:
    """Sheet names if both openpyxl and calamine open the file, else None."""
    import openpyxl
    from python_calamine import CalamineWorkbook

    try:
        wb = openpyxl.load_workbook(log)
        names = wb.sheetnames
        wb.close()
        calamine = CalamineWorkbook.from_path(str(log))
        if sorted(calamine.sheet_names) != sorted(names):
            return None
        for name in names:
            calamine.get_sheet_by_name(name).to_python()
        return names
    except Exception:  # noqa: BLE001 - any failure to open is what we count
        return None


def holds_new_version(command: str, log: Path, expected: bytes | None) -> bool:
    if command == "template":
        return log.read_bytes() == expected
    names = opens(log)
    if names is None:
        return False
    import openpyxl

    wb = openpyxl.load_workbook(log)
    try:
        if command == "add":
            values = [r[0] for r in wb["Experiments"].iter_rows(min_row=2, values_only=True)]
            return values[:2] == ["EXP-001", "EXP-002"]
        if command == "rerun":
            return "Reruns" in names and wb["Reruns"].max_row >= 2
        return "Sign-off" in names and wb["Sign-off"].max_row >= 2
    finally:
        wb.close()


def leftovers(root: Path, log: Path, trial_tmp: Path, expected_untracked: set[str]
              ) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {k: [] for k in ("temp files", "lock files", "worktrees",
                                                   "temp dirs", "running marks",
                                                   "git-visible")}
    tools = log.parent / ".aisdp-log"
    if tools.is_dir():  # also home of the hash and verdict caches (artefacts/cache.py): not counted
        for entry in tools.iterdir():
            if entry.name.endswith(".lock"):
                found["lock files"].append(str(entry))
            elif entry.name.endswith((".tmp", ".aisdp-tmp")) or "openpyxl" in entry.name:
                found["temp files"].append(str(entry))
    for entry in log.parent.iterdir():
        name = entry.name
        if name.endswith((".tmp", ".aisdp-tmp")) or (name.startswith(".") and name.endswith(
                ".tmp")):
            found["temp files"].append(str(entry))
        if name.endswith(".aisdp-lock"):
            found["lock files"].append(str(entry))
    reviews = root / "reviews"
    if reviews.is_dir():
        found["temp files"] += [str(p) for p in reviews.iterdir()
                                if p.name.startswith(".") or p.name.endswith(".tmp")]

    listing = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=root,
                             capture_output=True, text=True).stdout
    found["worktrees"] = [line for line in listing.splitlines()
                          if line.startswith("worktree ")][1:]
    found["temp dirs"] = [str(p) for p in trial_tmp.iterdir()]
    found["running marks"] = [str(p) for p in
                              (root / "artefacts").glob("*/reruns/*/.aisdp-log-running")]
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=root, capture_output=True, text=True).stdout
    for line in status.splitlines():
        path = line[3:]
        if not line.startswith("??") or path in expected_untracked:
            continue
        name = path.rsplit("/", 1)[-1]
        if path.startswith((".aisdp/signoffs/", "reviews/")):
            # review --sign's outputs: a new record per sign-off and the earlier signed files
            # kept under new names; only a temp file there is left over
            if name.startswith(".") or name.endswith(".tmp"):
                found["temp files"].append(path)
            continue
        found["git-visible"].append(line)
    return found


def torture(command: str, trials: int, work: Path, base_root: Path) -> Tally:
    from test_guard import processes_with  # the test's own /proc scan for leftover processes

    tally = Tally(command)
    # An unkilled run: its duration spreads the kill moments; its result is "complete".
    durations = []
    expected = None
    for attempt in range(3):
        root, log = fresh_copy(base_root, work / f"{command}-measure-{attempt}")
        trial_tmp = work / f"{command}-measure-{attempt}-tmp"
        trial_tmp.mkdir()
        start = time.perf_counter()
        done = subprocess.run(argv(command, root, log), cwd=root, capture_output=True,
                              text=True, env=run_env(trial_tmp, uuid.uuid4().hex))
        durations.append(time.perf_counter() - start)
        if done.returncode not in (0, 1) or not holds_new_version(command, log, None
                                                                  if command != "template"
                                                                  else log.read_bytes()):
            raise SystemExit(f"{command}: the unkilled run failed ({done.returncode}): "
                             f"{done.stderr.strip()[-400:]}")
        if command == "template":
            expected = log.read_bytes()
        untracked = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                                   cwd=root, capture_output=True, text=True).stdout
        expected_untracked = {line[3:] for line in untracked.splitlines()
                              if line.startswith("??")}
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(trial_tmp, ignore_errors=True)
    tally.duration_s = sorted(durations)[1]
    for i in range(trials):
        delay = tally.duration_s * (i + 0.5) / trials
        root, log = fresh_copy(base_root, work / f"{command}-{i}")
        trial_tmp = work / f"{command}-{i}-tmp"
        trial_tmp.mkdir()
        before = log.read_bytes()
        marker = uuid.uuid4().hex
        env = run_env(trial_tmp, marker)
        process = subprocess.Popen(argv(command, root, log), cwd=root, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            tally.killed += 1
        process.wait()
        tally.trials += 1
        deadline = time.monotonic() + 3
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = processes_with(marker)
        if orphans:
            tally.orphans += 1
            tally.notes.append(f"trial {i} (kill at {delay:.2f} s): orphans "
                               f"{[describe(pid) for pid in orphans]}")
            for pid in orphans:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if log.read_bytes() == before:
            tally.intact += 1
        elif holds_new_version(command, log, expected):
            tally.complete += 1
        else:
            tally.corrupt += 1
            tally.notes.append(f"trial {i}: corrupt log kept in {root}")
        next_env = run_env(trial_tmp, uuid.uuid4().hex)
        done = subprocess.run(argv(command, root, log, second=True), cwd=root, env=next_env,
                              capture_output=True, text=True)
        if done.returncode not in (0, 1):
            tally.next_failed += 1
            tally.notes.append(f"trial {i}: next command exit {done.returncode}: "
                               f"{done.stderr.strip()[-300:]}")
        found = leftovers(root, log, trial_tmp, expected_untracked)
        tally.leftover_trials += any(found.values())
        for kind, items in found.items():
            if items:
                tally.leftovers[kind] += 1
                tally.notes.append(f"trial {i}: {kind}: {items[:3]}")
        if not tally.notes or not tally.notes[-1].startswith(f"trial {i}:"):
            shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(trial_tmp, ignore_errors=True)
    return tally


def row(t: Tally) -> str:
    """One table row; leftovers count trials with any leftover, by kind."""
    kinds = {k: v for k, v in t.leftovers.items() if v}
    left = t.leftover_trials
    detail = ", ".join(f"{k} {v}" for k, v in kinds.items())
    return " | ".join(map(str, (
        t.command, f"{t.duration_s:.2f}", t.trials, t.killed, t.intact, t.complete, t.corrupt,
        t.next_failed, f"{left}" + (f" ({detail})" if detail else ""), t.orphans)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="kills per command")
    parser.add_argument("--commands", default=",".join(COMMANDS),
                        help="comma-separated subset of " + ",".join(COMMANDS))
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--quick", action="store_true", help="one kill per command")
    args = parser.parse_args()
    if args.quick:
        args.trials = 1
    commands = [c for c in args.commands.split(",") if c]
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown commands: {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="torture-writes-"))
    try:
        print("building the project (git, DVC, three runs) ...", file=sys.stderr)
        base_root, _ = build_base(work / "base")
        tallies = []
        for command in commands:
            print(f"{command}: measuring, then {args.trials} kills ...", file=sys.stderr)
            tally = torture(command, args.trials, work / "trials", base_root)
            tallies.append(tally)
            for note in tally.notes[:10]:
                print(f"  {command} {note}", file=sys.stderr)
            print(f"  {command}: {row(tally)}", file=sys.stderr, flush=True)
        header = ("command", "run s", "trials", "killed", "intact", "complete", "corrupt",
                  "next failed", "leftovers", "orphans")
        print(" | ".join(header))
        for tally in tallies:
            print(row(tally))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
