#!/usr/bin/env bash
# The speed benchmarks for two revisions, one after the other on this machine, so a change's
# figures sit beside the ones before it:
#
#     bash benchmarks/compare_revisions.sh BEFORE_REV [AFTER_REV]   # AFTER_REV: the work tree
#
# Each revision runs from a temporary `git worktree` (the work tree itself for AFTER_REV when
# omitted), with PYTHONPATH pointing at it and bytecode caching on, as an installed tool runs.
# The second revision runs on a warmer, busier machine (page cache, the first run's clean-up):
# for a close call, run it again with the order swapped.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
before="${1:?usage: compare_revisions.sh BEFORE_REV [AFTER_REV]}"
after="${2:-}"
scratch="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$scratch/before" >/dev/null 2>&1;
      [ -n "$after" ] && git -C "$root" worktree remove --force "$scratch/after" >/dev/null 2>&1;
      rm -rf "$scratch"' EXIT
git -C "$root" worktree add -q --detach "$scratch/before" "$before"
trees=("$scratch/before")
if [ -n "$after" ]; then
  git -C "$root" worktree add -q --detach "$scratch/after" "$after"
  trees+=("$scratch/after")
else
  trees+=("$root")
fi
unset PYTHONDONTWRITEBYTECODE
for tree in "${trees[@]}"; do
  echo "=================== $(git -C "$tree" rev-parse --short HEAD) ($tree)"
  cd "$tree" || exit 2
  export PYTHONPATH="$tree"
  python -c "import aisdp_log.cli" >/dev/null 2>&1  # compile the bytecode once
  echo "--- bench_validate";        python benchmarks/bench_validate.py --runs 5 2>&1 | tail -8
  echo "--- bench_crosscheck";      python benchmarks/bench_crosscheck.py --runs 7 2>&1 | tail -6
  echo "--- bench_crosscheck_scale"
  python benchmarks/bench_crosscheck_scale.py --runs 3 --large-mib 64 2>&1 | tail -12
  echo "--- bench_rerun";           python benchmarks/bench_rerun.py --runs 3 --repeat 2 2>&1 | tail -9
done
