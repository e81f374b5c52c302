#!/usr/bin/env bash
# SuspendProgram of the kilntest cluster (scripts/slurm-cluster.sh): slurmctld
# runs it with a hostlist of idle CLOUD nodes to power down; this stops the
# slurmd that resume-node.sh started for each (by its recorded PID) and drops
# it from <state>/pids. Same bare environment as resume-node.sh.
set -euo pipefail
# shellcheck source=power-common.sh
. "${BASH_SOURCE[0]%/*}/power-common.sh"  # no PATH yet: no dirname
power_setup suspend "$@"
echo "$(date +%T.%N) suspend $*: $found"

for node in $(scontrol show hostnames "$1"); do
  pid=$(awk -v n="slurmd-$node" '$1 == n { p = $2 } END { print p }' "$state/pids" 2>/dev/null || true)
  # Only a live slurmd of this cluster (its command line names our slurm.conf).
  cmd=
  [[ -n $pid ]] && cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  if [[ $cmd == *"$conf"* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < 50; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "$(date +%T.%N) $node: stopped slurmd pid $pid"
  else
    echo "$(date +%T.%N) $node: no running slurmd recorded"
  fi
  flock "$state/pids.lock" sh -c '[ -f "$2" ] || exit 0; grep -v "^$1 " "$2" >"$2.tmp" || true; mv "$2.tmp" "$2"' _ "slurmd-$node" "$state/pids"
done
