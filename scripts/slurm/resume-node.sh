#!/usr/bin/env bash
# ResumeProgram of the kilntest cluster (scripts/slurm-cluster.sh): slurmctld
# runs it with a hostlist of CLOUD nodes to power up, e.g. "cloud[1-2]". Here
# "powering up" a node means starting its slurmd on this host.
#
# slurmctld runs this with a bare environment (PATH unset), stdin/stdout/stderr
# closed, in a process group it may kill, and with signals blocked. Hence:
# an explicit PATH, output sent to <state>/log/power.log, slurmd started in a
# new session with an empty signal mask.
#
# A node that powers up must report a boot time newer than the resume
# request, or slurmctld keeps it in POWERING_UP ("Still waiting for boot of
# node ...") until ResumeTimeout marks it DOWN. A slurmd on this already
# running host would report the host's boot time, so it is started in a new
# time namespace whose CLOCK_BOOTTIME reads (almost) zero: a fresh boot.
set -euo pipefail

# shellcheck source=power-common.sh
. "${BASH_SOURCE[0]%/*}/power-common.sh"  # no PATH yet: no dirname
power_setup resume "$@"
echo "$(date +%T.%N) resume $*: $found; $(grep -E '^Sig(Blk|Ign)' /proc/self/status | paste -sd' ')"

# Whole seconds: slurmctld wants the node's boot time (time(NULL) minus
# sysinfo()'s uptime, which rounds UP) no earlier than the second it stamped
# the request. The namespace's uptime starts at the fraction of a second
# `--boottime` cannot shift away (0-1 s), plus the time to exec slurmd, and
# rounds up to 2 s or more under load: a 1 s wait made the node's boot
# time one second too early whenever that fraction was large, and slurmctld
# then waited for a boot until ResumeTimeout (test_4 of test_slurm_cluster
# failed that way, depending on the phase of the host's uptime). 3 s leaves
# a second of margin.
sleep 3
# Under the pids lock, and only while <state>/pids exists: `slurm-cluster.sh
# stop` renames that file under the same lock before it stops what it lists,
# so every slurmd started here is either recorded in time or never started.
exec 9>>"$state/pids.lock"
flock 9
if [[ ! -f $state/pids ]]; then
  echo "$(date +%T.%N) cluster stopped (no $state/pids): nothing started"
  exit 0
fi
for node in $(scontrol show hostnames "$1"); do
  old=$(awk -v n="slurmd-$node" '$1 == n { p = $2 } END { print p }' "$state/pids")
  if [[ -n $old ]] && kill -0 "$old" 2>/dev/null; then
    echo "$node: slurmd already running (pid $old)"
    continue
  fi
  mkdir -p "$state/spool/$node"
  cd "$state"  # slurmd's (and its slurmstepds') working directory
  up=$(cut -d. -f1 /proc/uptime)
  # setsid: out of slurmctld's process group, which it kills when a power
  # program runs too long. perl clears the inherited signal mask and
  # dispositions, then becomes slurmd (no fork: $! is slurmd's PID).
  # 9>&-: slurmd must not inherit the lock.
  setsid unshare --time --boottime="-$up" \
    perl -MPOSIX -e 'sigprocmask(SIG_SETMASK, POSIX::SigSet->new); $SIG{$_} = "DEFAULT" for keys %SIG; exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n"' \
    slurmd -D -f "$conf" -N "$node" </dev/null >>"$state/log/slurmd-$node.stdout" 2>&1 9>&- &
  pid=$!
  echo "slurmd-$node $pid" >>"$state/pids"
  echo "$(date +%T.%N) $node: slurmd pid $pid (boot time shifted by -$up s)"
done
