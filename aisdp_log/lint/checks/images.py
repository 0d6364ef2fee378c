"""S013, G008, G009: the container image an `Environment` cell names (`image: NAME@sha256:<64
hex>`, `aisdp_log.domain.images`): is the entry well-formed (S013), pinned by its digest rather
than a tag that moves (G008), and, with `--remote`, in the local engine's store or pullable
from its registry (G009)?

S013 and G008 read the workbook alone, so they run with `--offline` too. G009 asks the
container engine (`aisdp_log.system.containers`), once per distinct image; without an engine
nothing is guessed: each image entry gets one G009 saying it was not checked and why. Rows
whose images an engine answered for are recorded in `ctx.images_checked`: until then their
Environment cell counts as unverified evidence (`aisdp_log.lint.coverage`)."""

from __future__ import annotations

from collections.abc import Iterator

from aisdp_log.domain.images import image_entries
from aisdp_log.findings import Finding
from aisdp_log.system.containers import find_engine, image_local, image_pullable

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("S013", "G008", "G009")


def run(log, ctx) -> Iterator[Finding]:
    if "environment" not in log.columns:
        return
    pinned: dict[str, list] = {}  # reference -> rows naming it
    for row in log.rows:
        environment = log.typed(row, "environment")
        if not isinstance(environment, str):
            continue
        for entry in image_entries(environment):
            if entry.problem is not None:
                yield log.finding("S013", row, "environment",
                                  f"image entry {entry.text or '(empty)'!r}: {entry.problem}")
            elif entry.digest is None:
                yield log.finding("G008", row, "environment",
                                  f"image {entry.text} is named by tag, without a digest: a tag "
                                  "moves, so nothing pins the image this run used; write "
                                  f"`image: {entry.name}@sha256:<64 hex>` (the digest of the "
                                  "image the run used)")
            else:
                pinned.setdefault(entry.pinned, []).append(row)
    if pinned and ctx.remote and not ctx.offline:
        yield from _availability(log, pinned, ctx)
    # otherwise their cells stay unverified in the coverage figure (lint/coverage.py)


def _availability(log, pinned: dict[str, list], ctx) -> Iterator[Finding]:
    """G009: each pinned image that the engine's store lacks and no registry serves."""
    engine, reason = find_engine(ctx.config.rerun.engine)
    for reference, rows in pinned.items():
        if engine is None:
            problem = f"image {reference} was not checked: {reason}"
        else:
            ctx.images_checked.update(row.number for row in rows)
            if image_local(engine, reference):
                continue
            pullable, why = image_pullable(engine, reference)
            if pullable:
                continue
            problem = (f"image {reference} is not in {engine.name}'s local store and cannot be "
                       f"pulled ({why}); push it to a registry the team can reach, or the run "
                       "cannot be repeated in it")
        for row in rows:
            yield log.finding("G009", row, "environment", problem)
