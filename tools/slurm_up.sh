#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (Debian's slurm-wlm and munge, run as root):
# a munge key, munged, /etc/slurm/slurm.conf for this host, slurmctld and slurmd; wait until
# `sinfo` shows the node idle. The rerun tests (tests/test_rerun_slurm.py) submit to it.
# Stop it with tools/slurm_down.sh. Safe to run twice: a running cluster is left as it is.
set -euo pipefail

host=$(hostname -s)
conf=/etc/slurm/slurm.conf
state=/var/spool/slurmctld
spool=/var/spool/slurmd

if sinfo -h -p debug -o '%T' 2>/dev/null | grep -qx idle; then
  echo "slurm: already up ($(sinfo -h -o '%N %T'))"
  exit 0
fi

# munge: a key (1024 random bytes, owner munge, mode 400), the daemon as user munge.
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
fi

# slurm.conf: this host is the controller and the one compute node (partition `debug`).
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p /etc/slurm "$state" "$spool" /var/log/slurm
cat > "$conf" <<CONF
ClusterName=aisdp
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$state
SlurmdSpoolDir=$spool
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
KillWait=5
MinJobAge=300
SchedulerParameters=sched_interval=1
NodeName=$host CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
# A partition whose only node is another machine that never comes up: the tests ask rerun to
# submit there from a folder that machine could not see, and expect a refusal. rerun tells
# machines apart by node name; the address is a loopback one, and a FUTURE node is never
# contacted, so no traffic leaves this machine.
NodeName=far1 NodeAddr=127.0.0.2 CPUs=1 State=FUTURE
PartitionName=far Nodes=far1 MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd

for _ in $(seq 1 60); do
  if sinfo -h -p debug -o '%T' 2>/dev/null | grep -qx idle; then
    echo "slurm: up ($(sinfo -h -p debug -o "%P %N %T"))"
    exit 0
  fi
  # A node left down by an earlier stop comes back without waiting for ReturnToService.
  scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
  sleep 0.5
done
echo "slurm: the node did not become idle; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
