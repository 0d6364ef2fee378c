"""R006: a row changed after it was signed off in a review (workbook only, so it runs offline).
With an allowed signers file configured (git's `gpg.ssh.allowedSignersFile`, or
`.aisdp/allowed_signers` as committed in the repository) also R007-R011 and R014, as
`aisdp-log verify` reports them."""

from __future__ import annotations

from collections.abc import Iterator

from aisdp_log.findings import Finding
from aisdp_log.signing.signoff import check, read_signoffs
from aisdp_log.workbook.log import Log

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("R006", "R007", "R008", "R009", "R010", "R011", "R014")


def run(log: Log, ctx) -> Iterator[Finding]:
    records = read_signoffs(log.workbook)
    if not records:
        return
    # Only a log with sign-offs asks git for the setting, and loads the signature checks
    # (ssh-keygen, git config): most validations start no process and import neither.
    import tempfile
    from pathlib import Path

    from aisdp_log.signing import anchor as anchors
    from aisdp_log.signing.logcheck import check_signoffs

    trusted = None
    from aisdp_log.system import inputs

    inputs.asked_git()  # git's config and HEAD say which allowed signers apply
    inputs.note(Path(ctx.repo) / anchors.ALLOWED_SIGNERS_IN_REPO)
    with tempfile.TemporaryDirectory(prefix="aisdp-log-anchor-") as scratch:
        anchor = anchors.for_repository(ctx.repo, Path(scratch))
        if anchor is not None:
            # ssh-keygen's verdicts (a key's validity window, the program itself) are not
            # vouched for by any stat: such a log is checked afresh every time
            inputs.refuse("signatures checked with ssh-keygen")
            checked = check_signoffs(log, records, anchor.path)
            trusted = checked.trusted
            yield from checked.findings
            # R014 only: an uncommitted list's R012 is `verify`'s verdict on identity
            yield from (f for f in anchors.worktree_findings(anchor) if f.code == "R014")
    yield from check(log, records, trusted)
