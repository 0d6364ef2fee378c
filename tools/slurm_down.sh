#!/usr/bin/env bash
# Stop what tools/slurm_up.sh started: slurmd, slurmctld, then munged (by their pid files).
set -uo pipefail
stop() {  # pidfile-or-empty, name
  local pid=""
  [ -n "$1" ] && [ -s "$1" ] && pid=$(cat "$1")
  [ -z "$pid" ] && pid=$(pgrep -x "$2" | head -n1)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
stop /run/slurmd.pid slurmd
stop /run/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
echo "slurm: stopped"
