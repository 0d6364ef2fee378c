"""D004: each `params.*` cell against DVC's params files as they were at the row's commit.

The files are `params.yaml` at the DVC project's root and every params file a stage of
`dvc.yaml` declares (`params: [lr, {custom.yaml: [train.n_est]}]`, relative to the stage's
`wdir`), `foreach` and `matrix` stages expanded per item (`aisdp_log.repo.dvcstages`). Where
several files hold a name (one per item of a `foreach`), the cell agrees when one of them does.
A cell whose name one of them holds (dotted as DVC flattens, see `aisdp_log.domain.nested`) is
compared with it; a different value means that checking out the row's commit would train
with other parameters than the row records. Everything is read from git objects in a few
batched rounds (object ids first, then each distinct blob once), never from the work tree.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator

from aisdp_log.domain.nested import MISSING, lookup
from aisdp_log.domain.values import as_text, looks_equal
from aisdp_log.findings import Finding
from aisdp_log.lint.artefact_records import same_param
from aisdp_log.lint.checks.git import row_commits
from aisdp_log.repo.dvcfiles import dvc_root
from aisdp_log.repo.dvcstages import DEFAULT_PARAMS, declared_params_files
from aisdp_log.repo.git import GitRepo
from aisdp_log.repo.gitparse import repo_prefix
from aisdp_log.system import inputs
from aisdp_log.workbook.log import Log

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("D004",)

#: Params files larger than this are not params files (DVC reads them whole, too).
MAX_PARAMS_BYTES = 4 << 20


def run(log: Log, ctx) -> Iterator[Finding]:
    if not log.params:
        return
    column = log.columns.get("code_commit")
    if column is None:
        return
    repo = ctx.git
    root = dvc_root(ctx.repo, repo.root)
    # a project without a pipeline (no params.yaml or dvc.yaml in the work tree) costs
    # nothing: its param cells are verified by run.json or counted as unverified
    inputs.note_many((root / DEFAULT_PARAMS, root / "dvc.yaml"))
    if not (root / DEFAULT_PARAMS).is_file() and not (root / "dvc.yaml").is_file():
        return
    prefix = repo_prefix(root, repo.root)
    default = posixpath.join(prefix, DEFAULT_PARAMS) if prefix else DEFAULT_PARAMS
    stages = posixpath.join(prefix, "dvc.yaml") if prefix else "dvc.yaml"
    commits = row_commits(log, ctx)
    parsed = [(name, column, log.parse_column(column)) for name, column in log.params.items()]
    rows = [row for row in log.rows if row.number in commits
            and commits[row.number][1].status == "found"
            and any(values.get(row.number, (None, None))[0] is not None
                    for _, _, values in parsed)]
    if not rows:
        return
    shas = list(dict.fromkeys(sha for row in rows if (sha := commits[row.number][1].sha)))
    files = params_files(repo, shas, default, stages)
    for row in rows:
        typed_commit, found = commits[row.number]
        documents = files.get(found.sha or "", [])
        if not documents:
            continue
        for name, param_column, values in parsed:
            typed = values.get(row.number, (None, None))[0]
            if typed is None:
                continue
            holders = [(path, held) for path, document in documents
                       if (held := lookup(document, name)) is not MISSING]
            if not holders:
                continue
            ctx.coverage.verify(row.number, param_column)
            # a `foreach` / `matrix` stage declares one file per item, each holding the
            # name: the row trained one of them, so one agreeing file is enough
            if any(same_param(typed, held) for _, held in holders):
                continue
            # name the file the cell only looks equal to (a decimal comma, a percentage), if any
            raw = row.get(param_column)
            path, held = next((pair for pair in holders if looks_equal(raw, pair[1])),
                              holders[0])
            others = f" (and {len(holders) - 1} more params files)" if len(holders) > 1 else ""
            yield log.finding("D004", row, param_column, f"the row says {name} = "
                              f"{as_text(typed)}, but {path}{others} at commit {typed_commit} "
                              f"holds {json.dumps(held, default=str)[:60]}: checking out "
                              "that commit would train with other parameters; record "
                              "the experiment's own commit"
                              f"{looks_equal(raw, held)}")


def params_files(repo: GitRepo, shas: list[str], default: str,
                 stages: str) -> dict[str, list[tuple[str, dict]]]:
    """Commit -> [(path, parsed params file)] for `params.yaml` and every params file the
    commit's `dvc.yaml` declares: object ids in one round, each distinct blob read once."""
    first = repo.object_ids(f"{sha}:{path}" for sha in shas for path in (default, stages))
    declared: dict[str, list[str]] = {}
    pipelines = _read(repo, {oid for sha in shas if (oid := first[f"{sha}:{stages}"])})
    for sha in shas:
        oid = first[f"{sha}:{stages}"]
        paths = _declared(pipelines.get(oid), posixpath.dirname(stages)) if oid else []
        declared[sha] = [path for path in paths if path != default]
    more = repo.object_ids(f"{sha}:{path}" for sha in shas for path in declared[sha]
                           if "\n" not in path and "\r" not in path)
    oids = {sha: [(default, first[f"{sha}:{default}"])]
            + [(path, more.get(f"{sha}:{path}")) for path in declared[sha]] for sha in shas}
    blobs = _read(repo, {oid for pairs in oids.values() for _, oid in pairs if oid})
    documents: dict[str, dict | None] = {}
    result: dict[str, list[tuple[str, dict]]] = {}
    for sha, pairs in oids.items():
        for path, oid in pairs:
            if oid is None:
                continue
            key = f"{oid} {posixpath.splitext(path)[1].lower()}"
            if key not in documents:
                documents[key] = _parse(path, blobs.get(oid))
            document = documents[key]
            if document is not None:
                result.setdefault(sha, []).append((path, document))
    return result


def _read(repo: GitRepo, oids: set[str]) -> dict[str, bytes | None]:
    return repo.read_blobs(sorted(oids)) if oids else {}


def _declared(blob: bytes | None, base: str) -> list[str]:
    """The params files (from the repository root) the stages of a `dvc.yaml` declare, plain,
    `foreach` and `matrix` stages alike."""
    return declared_params_files(_parse("dvc.yaml", blob), base)


def _parse(path: str, blob: bytes | None) -> dict | None:
    """A params file as a table, by its extension as DVC reads it (YAML, JSON, TOML); None
    for anything else or anything unreadable (its cells then stay unverified)."""
    if blob is None or len(blob) > MAX_PARAMS_BYTES:
        return None
    extension = posixpath.splitext(path)[1].lower()
    try:
        if extension in (".yaml", ".yml"):
            import yaml

            document = yaml.load(blob, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        elif extension == ".json":
            document = json.loads(blob)
        elif extension == ".toml":
            import tomllib

            document = tomllib.loads(blob.decode("utf-8"))
        else:
            return None
    except Exception:  # noqa: BLE001 - any parse failure: the file is no witness
        return None
    return document if isinstance(document, dict) else None
