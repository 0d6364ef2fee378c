"""The trust anchor: which allowed signers file decides who a key belongs to, and whether it
comes from outside the evidence being checked.

Against an attacker who can edit the log, the repository's work tree or a bundle (but holds
no one else's private key), a signature proves only what the list it is checked against says
about its key. So the list must not come from what the attacker edits:

- `--allowed-signers FILE` (the assessor's own list) or git's `gpg.ssh.allowedSignersFile`:
  independent of the evidence.
- `.aisdp/allowed_signers` in a repository: read **as committed at HEAD**, never from the
  work tree; a work-tree copy that differs is reported (R014) and ignored. Each key's
  `valid-after`/`valid-before` is judged at the sign-off's time (`signatures.verify_args`).
- a bundle's own `allowed_signers`: not independent. `verify` still checks every signature
  against it, shows each signer's principal and key fingerprint, and reports R012 (identity
  not established) unless `--trust-bundle-signers` accepts it explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import CATALOGUE, Finding
from aisdp_log.repo.git import blob_at, resolve_commit
from aisdp_log.signing.signatures import ALLOWED_SIGNERS_IN_REPO, git_config

BUNDLE_SOURCE = "bundle"


@dataclass
class Anchor:
    """An allowed signers file and what it is worth as evidence of identity."""

    path: Path                  # the file ssh-keygen reads (-f)
    source: str                 # where it came from, as shown and in JSON `trust.source`
    independent: bool           # False: the evidence brought it (a bundle's own list)
    revision: str | None = None  # the commit a repository's list was read from
    #: why the work-tree copy of a committed list is not the one used (R014), if it differs
    worktree_edit: str | None = None
    #: a repository's list that was never committed (the work-tree file is all there is)
    uncommitted: bool = False

    def trust(self) -> dict:
        """`verify --format json`'s `trust` object."""
        found: dict = {"source": self.source, "independent": self.independent}
        if self.revision:
            found["revision"] = self.revision
        return found

    def note(self) -> str:
        """One line for stderr: which list was used."""
        where = f" as committed at {self.revision[:12]}" if self.revision else ""
        kind = " (not committed: not independent of the evidence)" if self.uncommitted \
            else "" if self.independent else " (not independent of the evidence)"
        return f"allowed signers: {self.source}{where}{kind}"


def file_finding(code: str, sheet: str, path: str, message: str) -> Finding:
    """A finding about a file rather than a cell: `sheet` names where the file lives
    (`bundle`, `repository`), `cell` its path."""
    return Finding(code, CATALOGUE[code].severity, sheet, path, 0, None, None, message)


def explicit(path: Path) -> Anchor:
    if not path.is_file():
        raise AisdpLogError(f"{path}: allowed signers file not found")
    return Anchor(path, str(path), True)


def for_repository(repo: Path | None, scratch: Path) -> Anchor | None:
    """The list a log in `repo` is checked against: git's `gpg.ssh.allowedSignersFile`, else
    `.aisdp/allowed_signers` as committed at HEAD (written to `scratch` for ssh-keygen); None
    where there is neither. A list that was never committed is returned as not independent
    (`uncommitted`): signing uses it to refuse early, `verify` reports R012 for it."""
    configured = git_config(repo, "gpg.ssh.allowedSignersFile", path=True)
    if configured:
        path = Path(os.path.expanduser(configured))
        if not path.is_absolute() and repo is not None:
            path = repo / path
        if not path.is_file():
            raise AisdpLogError(f"{path}: allowed signers file not found (git config "
                                "gpg.ssh.allowedSignersFile)")
        return Anchor(path, str(path), True)
    if repo is None:
        return None
    work_tree = repo / ALLOWED_SIGNERS_IN_REPO
    head = resolve_commit(repo, "HEAD", timeout=60)
    committed = blob_at(repo, head, ALLOWED_SIGNERS_IN_REPO.as_posix(), timeout=60) \
        if head else None
    if committed is None:
        if not work_tree.is_file():
            return None
        # anyone who can edit the work tree could have written it: checked against, but
        # not independent (`verify` reports R012, as for a bundle's own list)
        return Anchor(work_tree, str(work_tree), False, uncommitted=True)
    scratch.mkdir(parents=True, exist_ok=True)
    used = scratch / "allowed_signers"
    used.write_bytes(committed)
    edit = None
    try:
        now = work_tree.read_bytes()
    except OSError:
        edit = "deleted in the work tree"
    else:
        if now != committed:
            edit = "edited in the work tree since it was committed"
    return Anchor(used, str(work_tree), True, head, edit)


def worktree_findings(anchor: Anchor | None) -> list[Finding]:
    """R014 where the work-tree copy of the committed allowed signers differs; R012 where the
    repository's list was never committed."""
    if anchor is not None and anchor.uncommitted:
        return [file_finding("R012", "repository", ALLOWED_SIGNERS_IN_REPO.as_posix(),
                             f"identity not established: {ALLOWED_SIGNERS_IN_REPO.as_posix()} "
                             "is not committed, so anyone who can edit the work tree could "
                             "have written it; commit it, or pass --allowed-signers FILE")]
    if anchor is None or anchor.worktree_edit is None:
        return []
    return [file_finding("R014", "repository", ALLOWED_SIGNERS_IN_REPO.as_posix(),
                         f"{ALLOWED_SIGNERS_IN_REPO.as_posix()} is {anchor.worktree_edit}; "
                         f"the version committed at {(anchor.revision or 'HEAD')[:12]} was "
                         "used (commit the change if it is meant)")]
