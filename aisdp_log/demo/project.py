"""`aisdp-log demo DIR`: build a complete, real example project and its validated log.

The project is what a small team would have after a quarter: a git repository, DVC-tracked
data (scikit-learn's bundled breast-cancer data set, then a cleaned second version), a
`train.py` that records each run through `aisdp_log.training`, `aisdp.toml`, the log, and four
experiments trained on the CPU across three commits: a baseline, two variants and one on the new
data, each added with `aisdp-log add`, with hypotheses, outcomes and rationales filled in. The
selected experiment is chosen by the numbers the runs actually produced, never hard-coded.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.config import load_config
from aisdp_log.errors import AisdpLogError
from aisdp_log.lint.formatters import format_text
from aisdp_log.lint.runner import validate
from aisdp_log.record.add import add_experiment
from aisdp_log.repo.git import run_git
from aisdp_log.workbook.template import write_template
from aisdp_log.workbook.writer import find_rows, open_workbook_for_update, set_cell

LOG_NAME = "experiment-log.xlsx"
DATA_FILE = "data/dataset.csv"
THRESHOLD = 0.93

AISDP_TOML = f"""\
# aisdp-log configuration: see the README of aisdp-log.
artefacts = "artefacts"
id_pattern = "^EXP-[0-9]{{3,}}$"
data = ["data/dataset.csv.dvc"]

[template.params]
learning_rate = "float"
epochs = "int"
hidden = "int"
weight_decay = "float"
optimizer = ["sgd", "adam"]

[template.metrics.accuracy]
goal = "max"
threshold = {THRESHOLD}
description = "accuracy on the 25% holdout test set"

[template.metrics.f1]
goal = "max"
description = "F1 of the malignant class on the holdout test set"

[rerun]
command = ["python", "train.py"]
runs = 3
confidence = 0.95
timeout = 600
"""

TRAIN_PY_V1 = '''\
"""Train a small classifier on the breast-cancer data, recorded for the experiment log.

Run with AISDP_EXPERIMENT_ID, AISDP_SEED and AISDP_PARAMS set (aisdp-log rerun sets them);
the run's files land in artefacts/<ID>/.
"""

import csv

import torch

from aisdp_log.training import record_run

DEFAULTS = {"learning_rate": 0.01, "epochs": 30, "hidden": 16, "optimizer": "sgd"}


def load(path="data/dataset.csv"):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    features = torch.tensor([[float(v) for v in r[:-1]] for r in rows], dtype=torch.float32)
    labels = torch.tensor([int(r[-1]) for r in rows])
    return features, labels


def split(labels):
    # A fixed split, independent of the run's seed, so every run is scored on the same rows.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = len(labels) // 4
    return order[n_test:], order[:n_test]


def f1_score(predicted, truth, positive=0):
    tp = ((predicted == positive) & (truth == positive)).sum().item()
    fp = ((predicted == positive) & (truth != positive)).sum().item()
    fn = ((predicted != positive) & (truth == positive)).sum().item()
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def main():
    torch.set_num_threads(1)
    with record_run(params=DEFAULTS) as run:  # ID, seed and params come from AISDP_*
        p = run.params
        x, y = load()
        train, test = split(y)
        mean, std = x[train].mean(0), x[train].std(0) + 1e-8
        x = (x - mean) / std
        model = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], p["hidden"]), torch.nn.ReLU(),
            torch.nn.Linear(p["hidden"], 2))
        optimiser = OPTIMISERS[p["optimizer"]](model.parameters(), p)
        loss_fn = torch.nn.CrossEntropyLoss()
        for epoch in range(1, p["epochs"] + 1):
            model.train()
            for batch in torch.randperm(len(train)).split(32):
                rows = train[batch]
                optimiser.zero_grad()
                loss = loss_fn(model(x[rows]), y[rows])
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                predicted = model(x[test]).argmax(1)
                train_loss = loss_fn(model(x[train]), y[train]).item()
            accuracy = (predicted == y[test]).float().mean().item()
            run.log_epoch(epoch, loss=train_loss, accuracy=accuracy,
                          f1=f1_score(predicted, y[test]))
        run.log_metrics(accuracy=accuracy, f1=f1_score(predicted, y[test]))
        run.save_model(model)


OPTIMISERS = {
    "sgd": lambda params, p: torch.optim.SGD(params, lr=p["learning_rate"], momentum=0.9),
    "adam": lambda params, p: torch.optim.Adam(params, lr=p["learning_rate"]),
}

if __name__ == "__main__":
    main()
'''

# The second commit adds weight decay: a variant "across commits".
TRAIN_PY_V2 = TRAIN_PY_V1.replace(
    'DEFAULTS = {"learning_rate": 0.01, "epochs": 30, "hidden": 16, "optimizer": "sgd"}',
    'DEFAULTS = {"learning_rate": 0.01, "epochs": 30, "hidden": 16, "optimizer": "sgd",\n'
    '            "weight_decay": 0.0}',
).replace(
    '''    "sgd": lambda params, p: torch.optim.SGD(params, lr=p["learning_rate"], momentum=0.9),
    "adam": lambda params, p: torch.optim.Adam(params, lr=p["learning_rate"]),''',
    '''    "sgd": lambda params, p: torch.optim.SGD(params, lr=p["learning_rate"], momentum=0.9,
                                             weight_decay=p["weight_decay"]),
    "adam": lambda params, p: torch.optim.AdamW(params, lr=p["learning_rate"],
                                                weight_decay=p["weight_decay"]),''')

GITIGNORE = """\
__pycache__/
.aisdp-log/
/.dvc-storage/
/reviews/
/mlruns.db
/mlartefacts/
~$*.xlsx
.~lock.*#
"""


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    seed: int
    params: dict
    hypothesis: str


@dataclass
class DemoResult:
    root: Path
    log: Path
    experiments: list[str] = field(default_factory=list)
    selected: str | None = None
    baseline: str | None = None
    metrics: dict[str, dict] = field(default_factory=dict)
    errors: int = 0
    warnings: int = 0
    seconds: float = 0.0


def _require_extras() -> None:
    missing = [name for name in ("torch", "sklearn", "dvc", "safetensors")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise AisdpLogError(
            f"the demo trains real models and needs {', '.join(missing)}: install them with "
            "pip install 'aisdp-log[torch]' (on these machines: pip install torch==2.13.0 "
            "'aisdp-log[torch]')")


def _run(args: list[str], cwd: Path, env: dict | None = None, what: str = "") -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, encoding="utf-8",
                            errors="replace")
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[-400:]
        raise AisdpLogError(f"demo: {what or args[0]} failed: {detail}")
    return result.stdout


class _Project:
    """The demo repository and the commands a person would type in it."""

    def __init__(self, root: Path, echo: Callable[[str], None]):
        self.root = root
        self.echo = echo
        self.clock = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_TERMINAL_PROMPT="0")
        for name in ("AISDP_EXPERIMENT_ID", "AISDP_SEED", "AISDP_PARAMS", "AISDP_ARTEFACT_DIR"):
            self.env.pop(name, None)

    def git(self, *args: str) -> str:
        result = run_git(args, self.root, env=self.env, text=True)
        if result.returncode != 0:
            detail = " ".join((result.stderr or result.stdout).split())[-400:]
            raise AisdpLogError(f"demo: git {args[0]} failed: {detail}")
        return result.stdout.strip()

    def dvc(self, *args: str) -> str:
        return _run([sys.executable, "-m", "dvc", *args], self.root, self.env,
                    f"dvc {args[0]}")

    def commit(self, message: str, *paths: str) -> str:
        self.git("add", "-A", *paths)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def train(self, experiment: Experiment) -> None:
        env = dict(self.env, AISDP_EXPERIMENT_ID=experiment.experiment_id,
                   AISDP_SEED=str(experiment.seed), AISDP_PARAMS=json.dumps(experiment.params))
        started = time.perf_counter()
        _run([sys.executable, "train.py"], self.root, env, f"training {experiment.experiment_id}")
        self.echo(f"  trained {experiment.experiment_id} in {time.perf_counter() - started:.1f} s"
                  f" ({', '.join(f'{k}={v}' for k, v in experiment.params.items())})")


def _requirements() -> str:
    """The demo's lock file: the exact versions of what train.py imports on this machine. Its
    sha256 lands in every run's Environment cell, and validate checks it against the file at
    the row's commit (G005). `rerun --env lock` installs it: it pins only what training needs,
    all from an index (scikit-learn and DVC build the demo, not its runs; aisdp-log itself is
    put into a rebuilt environment by the running tool)."""
    from importlib.metadata import PackageNotFoundError, version

    lines = ["# Exact versions the demo's experiments were trained with (`aisdp-log rerun",
             "# --env lock` builds this; aisdp_log.training comes from the running aisdp-log)."]
    for name in ("torch", "numpy", "safetensors"):
        try:
            lines.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def _write_dataset(path: Path, clean: bool) -> int:
    """scikit-learn's bundled breast-cancer data; `clean` drops rows with a feature more than
    six standard deviations from its mean (the "cleaning step" of the second data version)."""
    import csv

    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rows = [list(map(float, features)) + [int(target)]
            for features, target in zip(data.data, data.target)]
    if clean:
        stats = []
        for column in zip(*[r[:-1] for r in rows]):
            mean = sum(column) / len(column)  # once per column, not once per value
            stats.append((mean, (sum((v - mean) ** 2 for v in column) / len(column)) ** 0.5))
        rows = [r for r in rows if all(abs(v - m) <= 6 * s for v, (m, s) in zip(r[:-1], stats))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([name.replace(" ", "_") for name in data.feature_names] + ["target"])
        writer.writerows([[repr(v) for v in r[:-1]] + [r[-1]] for r in rows])
    return len(rows)


def _fill_rows(log: Path, rows: dict[str, dict[str, object]]) -> None:
    """Set cells (header -> value) of the rows of these experiment IDs, in one save."""

    with open_workbook_for_update(log) as workbook:
        sheet = workbook["Experiments"]
        for experiment_id, values in rows.items():
            (row,) = find_rows(sheet, "Experiment ID", experiment_id)
            for header, value in values.items():
                set_cell(sheet, row, header, value)


def build_demo(target: Path | str, echo: Callable[[str], None] = print) -> DemoResult:
    """Build the demo project in `target` (new or empty) and return what it holds."""
    _require_extras()
    started = time.perf_counter()
    root = Path(target).absolute()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise AisdpLogError(f"{target}: exists and is not an empty folder; give a new folder")
    root.mkdir(parents=True, exist_ok=True)
    project = _Project(root, echo)
    echo(f"Building the aisdp-log demo project in {root}")

    # 1. A repository with a local identity, DVC with analytics off and a local remote.
    project.git("init", "-q", "-b", "main")
    for key, value in (("user.name", "Demo Team"), ("user.email", "demo-team@example.invalid"),
                       ("commit.gpgsign", "false")):
        project.git("config", key, value)
    project.dvc("init", "-q")
    project.dvc("config", "core.analytics", "false")
    project.dvc("remote", "add", "-d", "local", str(root / ".dvc-storage"))
    project.write(".gitignore", GITIGNORE)
    project.write("aisdp.toml", AISDP_TOML)
    project.write("train.py", TRAIN_PY_V1)
    project.write("requirements.txt", _requirements())
    rows_v1 = _write_dataset(root / DATA_FILE, clean=False)
    project.dvc("add", "-q", DATA_FILE)
    project.dvc("push", "-q")

    log = root / LOG_NAME
    write_template(log, load_config(root))
    commit_1 = project.commit("Breast-cancer data v1 (DVC), train.py, requirements.txt, "
                              "aisdp.toml, the log")
    echo(f"  commit {commit_1[:7]}: data v1 ({rows_v1} rows, DVC), train.py, requirements.txt,"
         f" aisdp.toml, {LOG_NAME}")

    def run_and_log(experiment: Experiment) -> None:
        project.train(experiment)
        add_experiment(log, experiment.experiment_id, repo=root)
        _fill_rows(log, {experiment.experiment_id: {"Hypothesis": experiment.hypothesis}})
        project.commit(f"Log {experiment.experiment_id} and its artefacts")

    small_sgd = {"learning_rate": 0.0005, "epochs": 10, "hidden": 8, "optimizer": "sgd"}
    wide_adamw = {"learning_rate": 0.003, "epochs": 40, "hidden": 32, "optimizer": "adam",
                  "weight_decay": 0.001}
    experiments = [
        Experiment("EXP-001", 1001, small_sgd,
                   "Baseline: a small MLP with plain SGD and short training sets the bar the "
                   "candidates must beat"),
    ]
    run_and_log(experiments[0])

    project.write("train.py", TRAIN_PY_V2)
    commit_2 = project.commit("train.py: weight decay, AdamW")
    echo(f"  commit {commit_2[:7]}: train.py gains weight decay (AdamW)")
    experiments.append(Experiment(
        "EXP-002", 1002, wide_adamw,
        "A wider network trained longer with AdamW and weight decay beats the baseline and "
        f"meets the {THRESHOLD} accuracy threshold"))
    run_and_log(experiments[-1])

    rows_v2 = _write_dataset(root / DATA_FILE, clean=True)
    project.dvc("add", "-q", DATA_FILE)
    project.dvc("push", "-q")
    commit_3 = project.commit("Data v2: drop rows with a feature beyond 6 standard deviations")
    echo(f"  commit {commit_3[:7]}: data v2 (cleaned: {rows_v1 - rows_v2} outlier rows dropped)")
    experiments += [
        Experiment("EXP-003", 1003, wide_adamw,
                   "Removing extreme outliers (data v2) helps the AdamW model"),
        Experiment("EXP-004", 1004, dict(small_sgd, weight_decay=0.0),
                   "Cleaning the data alone lifts the small SGD model over the threshold"),
    ]
    for experiment in experiments[2:]:
        run_and_log(experiment)

    # 2. Decide, from the numbers the runs produced.
    metrics = {e.experiment_id: json.loads(
        (root / "artefacts" / e.experiment_id / "metrics.json").read_text("utf-8"))
        for e in experiments}
    baseline = experiments[0].experiment_id
    candidates = [e.experiment_id for e in experiments[1:]]
    best = max(candidates, key=lambda i: (metrics[i]["accuracy"], metrics[i]["f1"]))
    base_acc = metrics[baseline]["accuracy"]
    selected = best if metrics[best]["accuracy"] >= THRESHOLD else None
    decisions: dict[str, dict[str, object]] = {baseline: {
        "Outcome": "baseline",
        "Notes": f"Reference for this quarter: accuracy {base_acc:.3f}, "
                 f"F1 {metrics[baseline]['f1']:.3f}."}}
    for experiment_id in candidates:
        acc, f1 = metrics[experiment_id]["accuracy"], metrics[experiment_id]["f1"]
        delta = f"{(acc - base_acc) * 100:+.1f} points of accuracy against the baseline"
        if experiment_id == selected:
            outcome = "selected"
            notes = (f"Best holdout accuracy {acc:.3f} (F1 {f1:.3f}), {delta}; meets the "
                     f"declared threshold {THRESHOLD}.")
        else:
            outcome = "rejected"
            why = (f"below the declared threshold {THRESHOLD}" if acc < THRESHOLD else
                   f"behind {best} ({metrics[best]['accuracy']:.3f})")
            notes = f"Accuracy {acc:.3f} (F1 {f1:.3f}), {delta}; {why}."
        decisions[experiment_id] = {"Outcome": outcome, "Notes": notes}
    _fill_rows(log, decisions)
    project.commit("Quarterly model selection: outcomes and rationales")

    # 3. Validate, as CI would.

    report = validate(log, repo=root)
    result = DemoResult(root=root, log=log, experiments=[e.experiment_id for e in experiments],
                        selected=selected, baseline=baseline, metrics=metrics,
                        errors=report.errors, warnings=report.warnings,
                        seconds=time.perf_counter() - started)
    if report.errors:

        echo(format_text(report))
        raise AisdpLogError(f"demo: the log has {report.errors} errors; this is a bug in "
                            "aisdp-log, please report it")
    _print_summary(result, echo)
    return result


def _print_summary(result: DemoResult, echo: Callable[[str], None]) -> None:
    rel = os.path.relpath(result.root)
    log = os.path.join(rel, LOG_NAME)
    echo("")
    echo(f"Built in {result.seconds:.0f} s: {len(result.experiments)} experiments, baseline "
         f"{result.baseline}, selected {result.selected or 'none (no run met the threshold)'}.")
    for experiment_id in result.experiments:
        m = result.metrics[experiment_id]
        echo(f"  {experiment_id}  accuracy {m['accuracy']:.3f}  f1 {m['f1']:.3f}")
    echo(f"validate: {result.errors} error{'s' * (result.errors != 1)}, "
         f"{result.warnings} warning{'s' * (result.warnings != 1)} "
         "(the selected run has no reproducibility evidence yet: R005)")
    echo("")
    echo("Next, try:")
    echo(f"  aisdp-log validate {log}")
    if result.selected:
        echo(f"  aisdp-log rerun {log} --id {result.selected} --mode bitwise")
    echo(f"  aisdp-log review {log} -o {os.path.join(rel, 'reviews')}")
    echo(f"  echo tampered >> {os.path.join(rel, 'artefacts', 'EXP-002', 'model.safetensors')}"
         f" && aisdp-log validate {log}    # A002")
