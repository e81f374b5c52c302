#!/usr/bin/env bash
# Kiln's private Slurm 22.05 test cluster on this one machine: munged, slurmctld,
# three static slurmd (node1..node3) and two power-saved CLOUD nodes
# (cloud1, cloud2), every file under one state directory, every daemon
# recorded by PID. See docs/slurm-cluster.md; `--help` for the commands.
set -euo pipefail
export LC_ALL=C

PROG=slurm-cluster
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
RESUME_PROG="$SCRIPT_DIR/slurm/resume-node.sh"
SUSPEND_PROG="$SCRIPT_DIR/slurm/suspend-node.sh"
STATIC_NODES=(node1 node2 node3)
CLOUD_NODES=(cloud1 cloud2)
# Daemons live in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"

usage() {
  cat <<'EOF'
Usage: scripts/slurm-cluster.sh [options] COMMAND [NODE]

Runs a private multi-node Slurm cluster (ClusterName=kilntest) on this host
for Kiln's tests: munged with its own key and socket, slurmctld, three static
nodes node1..node3 (one slurmd each, MULTIPLE_SLURMD) and two power-saved
CLOUD nodes cloud1, cloud2 whose slurmd scripts/slurm/resume-node.sh starts
and scripts/slurm/suspend-node.sh stops. Partitions: staging (default,
preemptable, requeued), production (preempts staging), cloud.

Commands:
  start             start everything; wait until node1..3 are idle; print
                    `export SLURM_CONF=<state>/slurm.conf` as the last line
                    of stdout (progress and timings go to stderr)
  stop [--wipe]     stop exactly the recorded daemons (SIGTERM, then SIGKILL
                    after 5 s) and any job processes left on the nodes;
                    --wipe also deletes the state directory
  status            sinfo of the running cluster, or "not running" (exit 3)
  kill-node NODE    crash a static node: SIGKILL its slurmd (recorded PID) and
                    the job steps running on it; --keep-jobs kills only slurmd
  start-node NODE   start a static node's slurmd again and wait until it
                    answers slurmctld

Options (and environment):
  --state DIR       state directory   (KILN_SLURM_STATE, default
                    ${TMPDIR:-/tmp}/kiln-slurm); logs in DIR/log
  --port-base N     slurmctld port N, node1..3 on N+1..N+3, cloud1..2 on
                    N+4..N+5 (KILN_SLURM_PORT_BASE, default 16900)
  KILN_SLURM_CPUS          CPUs each node advertises (default 2)
  KILN_SLURM_MEM_MB        RealMemory of each node in MB (default 1024)
  KILN_SLURM_SUSPEND_TIME  idle seconds before a cloud node powers down
                           (default 20)
  KILN_SLURM_START_TIMEOUT seconds `start` waits for the nodes (default 30)
  KILN_SLURM_EXTRA_CONF    a file whose lines `start` appends to the generated
                           slurm.conf, e.g. an extra partition
                           `PartitionName=one Nodes=node1 State=UP` (default:
                           none; nothing is appended)

Needs root and the Debian packages munge and slurm-wlm
(scripts/install-deps.sh). Every client call must have SLURM_CONF set.
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }

T0=$(date +%s%N)
say() {
  local now; now=$(date +%s%N)
  printf '%s: [%6.2fs] %s\n' "$PROG" "$(( (now - T0) / 1000000 ))e-3" "$*" >&2
}

# ---------------------------------------------------------------- arguments
STATE=${KILN_SLURM_STATE:-${TMPDIR:-/tmp}/kiln-slurm}
PORT_BASE=${KILN_SLURM_PORT_BASE:-16900}
CPUS=${KILN_SLURM_CPUS:-2}
MEM_MB=${KILN_SLURM_MEM_MB:-1024}
SUSPEND_TIME=${KILN_SLURM_SUSPEND_TIME:-20}
START_TIMEOUT=${KILN_SLURM_START_TIMEOUT:-30}
EXTRA_CONF=${KILN_SLURM_EXTRA_CONF:-}
WIPE=0
KEEP_JOBS=0
CMD=
NODE_ARG=
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --state) [[ $# -ge 2 ]] || die "--state needs a directory"; STATE=$2; shift 2 ;;
    --state=*) STATE=${1#--state=}; shift ;;
    --port-base) [[ $# -ge 2 ]] || die "--port-base needs a number"; PORT_BASE=$2; shift 2 ;;
    --port-base=*) PORT_BASE=${1#--port-base=}; shift ;;
    --wipe) WIPE=1; shift ;;
    --keep-jobs) KEEP_JOBS=1; shift ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      if [[ -z $CMD ]]; then CMD=$1
      elif [[ -z $NODE_ARG ]]; then NODE_ARG=$1
      else die "unexpected argument $1 (see --help)"; fi
      shift ;;
  esac
done
[[ -n $CMD ]] || { usage >&2; exit 2; }
[[ -n $STATE ]] || die "empty state directory"
for v in PORT_BASE CPUS MEM_MB SUSPEND_TIME START_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
(( PORT_BASE >= 1024 && PORT_BASE + 5 <= 65535 )) || die "port base $PORT_BASE out of range"
(( CPUS >= 1 )) || die "KILN_SLURM_CPUS must be at least 1"
[[ -z $EXTRA_CONF || $CMD != start || -r $EXTRA_CONF ]] ||
  die "KILN_SLURM_EXTRA_CONF: cannot read '$EXTRA_CONF'"

# Absolute state path: slurm.conf and the power scripts use it from anywhere.
[[ $CMD == start ]] && mkdir -p "$STATE"
if [[ -d $STATE ]]; then STATE=$(cd "$STATE" && pwd -P); else STATE=$(realpath -m "$STATE"); fi
CONF="$STATE/slurm.conf"
PIDS="$STATE/pids"
LOG="$STATE/log"
MUNGE_SOCK="$STATE/munge/munge.socket"

# ---------------------------------------------------------------- pid records
# $PIDS has one "name pid" line per daemon; the resume/suspend scripts edit it
# too, always under flock on $STATE/pids.lock.
with_lock() { flock "$STATE/pids.lock" "$@"; }

# True when PID is alive and its command line mentions this state directory
# (every daemon we start gets a path under it), so a recycled PID is never
# taken for ours.
is_ours() {
  local pid=$1 cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$STATE/"* ]]
}

record_pid() { with_lock sh -c 'echo "$1 $2" >>"$3"' _ "$1" "$2" "$PIDS"; }

forget_pid() {  # forget_pid NAME: drop NAME's lines
  [[ -f $PIDS ]] || return 0
  with_lock sh -c '[ -f "$2" ] || exit 0; grep -v "^$1 " "$2" >"$2.tmp" || true; mv "$2.tmp" "$2"' _ "$1" "$PIDS"
}

recorded_pid() {  # recorded_pid NAME -> last recorded PID for NAME
  [[ -f $PIDS ]] || return 0
  awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p }' "$PIDS"
}

live_daemons() {  # names and PIDs of recorded daemons still running
  local f name pid
  for f in "$PIDS" "$PIDS.stopping"; do
    [[ -f $f ]] || continue
    while read -r name pid; do
      if is_ours "$pid"; then echo "$name $pid"; fi
    done <"$f"
  done
}

# ---------------------------------------------------------------- job steps
# slurmstepd outlives its slurmd (it is a daemon of its own), and so do the
# job's processes. Each step listens on a socket in its node's spool
# directory; /proc/net/unix maps those paths to socket inodes and /proc/*/fd
# maps inodes to the stepd PIDs. Prints those PIDs and all their descendants.
step_pids() {  # step_pids SPOOL_PREFIX
  local prefix=$1 inodes pids=() p
  inodes=$(awk -v pre="$prefix" 'NR > 1 && index($8, pre) == 1 { print $7 }' /proc/net/unix | sort -u)
  [[ -n $inodes ]] || return 0
  local re
  re=$(echo "$inodes" | paste -sd '|')
  while read -r p; do
    [[ -n $p ]] && pids+=("$p")
  done < <(find /proc/[0-9]*/fd -maxdepth 1 -type l -printf '%h %l\n' 2>/dev/null |
           awk -v re="^socket:\\\\[($re)\\\\]$" '$2 ~ re { split($1, a, "/"); print a[3] }' | sort -u)
  [[ ${#pids[@]} -gt 0 ]] || return 0
  # Only slurmstepd itself; then its whole process tree (parents from /proc/*/stat).
  local roots=() comm
  for p in "${pids[@]}"; do
    comm=$(cat "/proc/$p/comm" 2>/dev/null || true)
    [[ $comm == slurmstepd ]] && roots+=("$p")
  done
  [[ ${#roots[@]} -gt 0 ]] || return 0
  local line rest f pid ppid
  declare -A parent=()
  for f in /proc/[0-9]*/stat; do
    read -r line <"$f" 2>/dev/null || continue
    pid=${f#/proc/}; pid=${pid%/stat}
    rest=${line##*) }
    read -r _ ppid _ <<<"$rest"
    parent[$pid]=$ppid
  done
  declare -A keep=()
  for p in "${roots[@]}"; do keep[$p]=1; done
  local changed=1
  while (( changed )); do
    changed=0
    for pid in "${!parent[@]}"; do
      if [[ -z ${keep[$pid]:-} && -n ${keep[${parent[$pid]}]:-} ]]; then
        keep[$pid]=1; changed=1
      fi
    done
  done
  printf '%s\n' "${!keep[@]}"
}

kill_steps() {  # kill_steps SPOOL_PREFIX: SIGKILL job steps and their processes
  local victims
  victims=$(step_pids "$1")
  [[ -n $victims ]] || return 0
  # shellcheck disable=SC2086
  kill -KILL $victims 2>/dev/null || true
  say "killed $(echo "$victims" | wc -l) job-step process(es) under $1"
}

# Send SIGTERM to PIDs, wait up to 5 s, then SIGKILL what is left.
terminate() {
  local pids=("$@") p i alive
  [[ ${#pids[@]} -gt 0 ]] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    (( alive )) || return 0
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      say "pid $p ignored SIGTERM for 5 s: SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
}

# ---------------------------------------------------------------- helpers
need_tools() {
  local missing=() t
  for t in munged munge unmunge slurmctld slurmd sinfo scontrol flock unshare setsid timeout perl; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [[ ${#missing[@]} -eq 0 ]] ||
    die "missing ${missing[*]}: install munge and slurm-wlm (scripts/install-deps.sh)"
  [[ $(id -u) -eq 0 ]] || die "must run as root (slurmd runs jobs as their owner)"
}

# True when something listens on TCP port $1 (any address). Read from /proc
# rather than by connecting, which slurmctld would log as an error.
port_busy() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
                    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

node_index() {  # node_index NAME -> 1..5 (port offset), or fail
  local i
  for i in "${!STATIC_NODES[@]}"; do [[ ${STATIC_NODES[$i]} == "$1" ]] && { echo $((i + 1)); return 0; }; done
  for i in "${!CLOUD_NODES[@]}"; do [[ ${CLOUD_NODES[$i]} == "$1" ]] && { echo $((i + 1 + ${#STATIC_NODES[@]})); return 0; }; done
  return 1
}

is_static() { local n; for n in "${STATIC_NODES[@]}"; do [[ $n == "$1" ]] && return 0; done; return 1; }

show_logs() {
  local f
  for f in "$LOG/munged.log" "$LOG/slurmctld.log" "$LOG"/slurmd-*.log "$LOG"/*.stdout "$LOG/power.log"; do
    [[ -s $f ]] || continue
    echo "---- tail of $f" >&2
    tail -n 15 "$f" >&2
  done
}

sinfo_nodes() {  # "name state" per line; state as sinfo %T (idle, down*, idle~ ...)
  SLURM_CONF=$CONF timeout 5 sinfo -h -N -o '%N %T' "$@" 2>/dev/null | sort -u
}

start_slurmd() {  # start_slurmd NODE: a static node's slurmd in the background
  local node=$1 pid
  mkdir -p "$STATE/spool/$node"
  cd "$STATE"
  setsid slurmd -D -f "$CONF" -N "$node" </dev/null >>"$LOG/slurmd-$node.stdout" 2>&1 &
  pid=$!
  record_pid "slurmd-$node" "$pid"
  say "slurmd $node pid $pid port $((PORT_BASE + $(node_index "$node")))"
}

write_conf() {
  local host n i
  host=$(hostname -s)
  {
    echo "# Written by scripts/slurm-cluster.sh; regenerated on every start."
    cat <<EOF
ClusterName=kilntest
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${PORT_BASE}
SlurmdPort=$((PORT_BASE + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again
# (default 120 s).
AuthInfo=socket=${MUNGE_SOCK},cred_expire=10
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/spool/%n
SlurmctldPidFile=${STATE}/run/slurmctld.pid
SlurmdPidFile=${STATE}/run/slurmd-%n.pid
SlurmctldLogFile=${LOG}/slurmctld.log
SlurmdLogFile=${LOG}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule at once on every event, and at least every 2 s for jobs that became
# eligible by time alone (a requeued job waits cred_expire seconds first).
# The bare word defer_batch would turn deferral on: it is deliberately absent.
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,kill_invalid_depend,sched_interval=2,bf_interval=2
MpiDefault=none
# Nodes advertise the CPUs and memory configured below, not the hardware.
SlurmdParameters=config_overrides
ReturnToService=2
# A dead slurmd is marked not responding after ~12 s and DOWN (its jobs
# requeued) after ~20 s. A ping to it fails only after MessageTimeout.
SlurmdTimeout=10
SlurmctldTimeout=30
MessageTimeout=5
InactiveLimit=0
KillWait=5
MinJobAge=600
MaxJobCount=100000
MaxArraySize=100001
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Every slurmd talks to slurmctld directly (no forwarding through powered-down nodes).
TreeWidth=65533
# Show powered-down CLOUD nodes in sinfo/scontrol.
PrivateData=cloud
# Power saving: only the CLOUD nodes are ever suspended.
ResumeProgram=${RESUME_PROG}
SuspendProgram=${SUSPEND_PROG}
SuspendTime=${SUSPEND_TIME}
SuspendTimeout=10
ResumeTimeout=60
ResumeRate=0
SuspendRate=0
SuspendExcNodes=$(IFS=,; echo "${STATIC_NODES[*]}")
SlurmctldParameters=idle_on_node_suspend,power_save_interval=1,power_save_min_interval=0
EOF
    for n in "${STATIC_NODES[@]}"; do
      i=$(node_index "$n")
      echo "NodeName=$n NodeAddr=127.0.0.1 NodeHostname=$host Port=$((PORT_BASE + i)) CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN"
    done
    for n in "${CLOUD_NODES[@]}"; do
      i=$(node_index "$n")
      echo "NodeName=$n NodeAddr=127.0.0.1 NodeHostname=$host Port=$((PORT_BASE + i)) CPUs=$CPUS RealMemory=$MEM_MB State=CLOUD"
    done
    local statics cloud
    statics=$(IFS=,; echo "${STATIC_NODES[*]}")
    cloud=$(IFS=,; echo "${CLOUD_NODES[*]}")
    cat <<EOF
PartitionName=staging Nodes=${statics} Default=YES PriorityTier=1 PreemptMode=REQUEUE MaxTime=INFINITE State=UP
PartitionName=production Nodes=${statics} PriorityTier=10 PreemptMode=OFF MaxTime=INFINITE State=UP
PartitionName=cloud Nodes=${cloud} MaxTime=INFINITE State=UP
EOF
    if [[ -n $EXTRA_CONF ]]; then
      echo "# Appended from KILN_SLURM_EXTRA_CONF=${EXTRA_CONF}"
      cat "$EXTRA_CONF"
    fi
  } >"$CONF"
  # slurmd reads cgroup.conf beside slurm.conf even with proctrack/linuxproc.
  cat >"$STATE/cgroup.conf" <<'EOF'
CgroupPlugin=autodetect
IgnoreSystemd=yes
EOF
}

# ---------------------------------------------------------------- commands
cmd_start() {
  need_tools
  local live
  live=$(live_daemons)
  [[ -z $live ]] || die "$STATE already runs a cluster ($(echo "$live" | paste -sd, -)); run '$0 --state $STATE stop' first"
  [[ -x $RESUME_PROG && -x $SUSPEND_PROG ]] || die "$RESUME_PROG and $SUSPEND_PROG must exist and be executable"
  # Each job step listens on a unix socket in its node's spool directory;
  # those paths are limited to 107 bytes.
  local longest="$STATE/spool/cloud2/cloud2_4294967295.4294967295"
  (( ${#longest} <= 107 )) || die "state path $STATE too long for slurmstepd's unix sockets (${#longest} > 107 bytes): use a shorter --state"
  local p
  for (( p = PORT_BASE; p <= PORT_BASE + 5; p++ )); do
    port_busy "$p" && die "port $p on 127.0.0.1 is in use: pick another --port-base"
  done
  rm -f "$PIDS" "$PIDS.stopping"
  # A fresh cluster: no job or node state from a previous run, fresh logs,
  # and no job step left behind by one whose daemons died unstopped.
  kill_steps "$STATE/spool/"
  rm -rf "$STATE/ctld" "$STATE/spool" "$STATE/run" "$LOG"
  mkdir -p "$STATE/munge" "$STATE/ctld" "$STATE/spool" "$STATE/run" "$LOG"
  chmod 700 "$STATE/munge"
  : >"$PIDS"
  export SLURM_CONF=$CONF
  # The daemons' working directory: a core file of theirs (slurmstepd's,
  # when its node is killed) lands in the state dir, not the caller's.
  cd "$STATE"

  # From here on, a failure stops whatever was started.
  trap 'rc=$?; if (( rc != 0 )); then show_logs; say "start failed; stopping what was started"; cmd_stop >/dev/null 2>&1 || true; fi' EXIT

  # munged: private key, socket, seed, pid and log; never /etc/munge or /run/munge.
  if [[ ! -s $STATE/munge/munge.key ]]; then
    dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$STATE/munge/munge.key"
  setsid munged --foreground --force --socket="$MUNGE_SOCK" \
    --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
    --seed-file="$STATE/munge/munged.seed" --log-file="$LOG/munged.log" \
    </dev/null >>"$LOG/munged.stdout" 2>&1 &
  local munged_pid=$!
  record_pid munged "$munged_pid"
  local i
  for (( i = 0; i < 100; i++ )); do
    kill -0 "$munged_pid" 2>/dev/null || die "munged exited"
    [[ -S $MUNGE_SOCK ]] && munge -S "$MUNGE_SOCK" -n 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1 && break
    sleep 0.05
  done
  (( i < 100 )) || die "munged did not answer on $MUNGE_SOCK within 5 s"
  say "munged pid $munged_pid"

  write_conf
  setsid slurmctld -D -c -i -f "$CONF" </dev/null >>"$LOG/slurmctld.stdout" 2>&1 &
  local ctld_pid=$!
  record_pid slurmctld "$ctld_pid"
  for (( i = 0; i < 200; i++ )); do
    kill -0 "$ctld_pid" 2>/dev/null || die "slurmctld exited"
    port_busy "$PORT_BASE" && break
    sleep 0.05
  done
  (( i < 200 )) || die "slurmctld did not listen on port $PORT_BASE within 10 s"
  say "slurmctld pid $ctld_pid port $PORT_BASE"

  local n
  for n in "${STATIC_NODES[@]}"; do start_slurmd "$n"; done

  local deadline=$(( $(date +%s) + START_TIMEOUT )) states idle
  while :; do
    kill -0 "$ctld_pid" 2>/dev/null || die "slurmctld exited"
    for n in "${STATIC_NODES[@]}"; do
      kill -0 "$(recorded_pid "slurmd-$n")" 2>/dev/null || die "slurmd for $n exited"
    done
    states=$(sinfo_nodes -n "$(IFS=,; echo "${STATIC_NODES[*]}")" || true)
    idle=$(awk '$2 == "idle"' <<<"$states" | wc -l)
    (( idle == ${#STATIC_NODES[@]} )) && break
    if (( $(date +%s) >= deadline )); then
      echo "node states after ${START_TIMEOUT} s:" >&2
      echo "${states:-<sinfo gave nothing>}" >&2
      die "node1..3 not idle within ${START_TIMEOUT} s (KILN_SLURM_START_TIMEOUT); logs in $LOG"
    fi
    sleep 0.1
  done
  trap - EXIT
  say "cluster kilntest up: ${STATIC_NODES[*]} idle; ${CLOUD_NODES[*]} powered down; state $STATE"
  echo "export SLURM_CONF=$CONF"
}

cmd_stop() {
  # Under the lock, pids becomes pids.stopping: resume-node.sh takes the same
  # lock and starts a cloud slurmd only while pids exists, so a resume racing
  # with stop either recorded its slurmd already (stopped here) or starts
  # nothing. The lock is not held while slurmctld shuts down: slurmctld waits
  # for a running ResumeProgram, which may be waiting for the lock.
  # pids.stopping survives an interrupted stop; the next stop finishes it.
  if [[ -f $PIDS ]]; then
    with_lock sh -c 'cat "$1" >>"$1.stopping" && rm -f "$1"' _ "$PIDS"
  fi
  if [[ ! -f $PIDS.stopping ]]; then
    say "not running (no $PIDS)"
  else
    local name pid slurmds=() ctld=() munge=() other=()
    while read -r name pid; do
      is_ours "$pid" || continue
      case $name in
        slurmd-*) slurmds+=("$pid") ;;
        slurmctld) ctld+=("$pid") ;;
        munged) munge+=("$pid") ;;
        *) other+=("$pid") ;;
      esac
    done <"$PIDS.stopping"
    # Job processes first (they outlive slurmd); then all daemons at once:
    # each takes 1-2 s to exit on SIGTERM, in turn that would be 5-6 s.
    kill_steps "$STATE/spool/"
    terminate "${slurmds[@]}" "${other[@]}" "${ctld[@]}" "${munge[@]}"
    kill_steps "$STATE/spool/"
    rm -f "$PIDS.stopping"
    say "stopped $(( ${#slurmds[@]} + ${#ctld[@]} + ${#munge[@]} + ${#other[@]} )) daemon(s)"
  fi
  if (( WIPE )); then
    rm -rf "$STATE"
    say "removed $STATE"
  fi
}

cmd_status() {
  local live
  live=$(live_daemons)
  if [[ -z $live || ! -f $CONF ]]; then
    echo "kilntest cluster in $STATE: not running"
    return 3
  fi
  echo "kilntest cluster in $STATE: $(echo "$live" | awk '{print $1}' | paste -sd' ' -)"
  echo "export SLURM_CONF=$CONF"
  SLURM_CONF=$CONF timeout 10 sinfo
}

need_running() {
  [[ -f $CONF && -n $(live_daemons) ]] || die "no cluster running in $STATE"
  is_ours "$(recorded_pid slurmctld)" || die "slurmctld of $STATE is not running"
}

cmd_kill_node() {
  local node=$1 pid
  is_static "$node" || die "kill-node takes a static node (${STATIC_NODES[*]}), got '$node'"
  need_running
  pid=$(recorded_pid "slurmd-$node")
  is_ours "$pid" || die "$node has no running slurmd"
  kill -KILL "$pid"
  forget_pid "slurmd-$node"
  say "SIGKILL slurmd $node (pid $pid)"
  (( KEEP_JOBS )) || kill_steps "$STATE/spool/$node/"
}

cmd_start_node() {
  local node=$1 pid i state
  is_static "$node" || die "start-node takes a static node (${STATIC_NODES[*]}), got '$node'"
  need_running
  pid=$(recorded_pid "slurmd-$node")
  if is_ours "$pid"; then die "$node already runs (slurmd pid $pid)"; fi
  forget_pid "slurmd-$node"
  start_slurmd "$node"
  pid=$(recorded_pid "slurmd-$node")
  # Registered once sinfo no longer flags it as not responding (*).
  for (( i = 0; i < 300; i++ )); do
    kill -0 "$pid" 2>/dev/null || { show_logs; die "slurmd for $node exited"; }
    state=$(sinfo_nodes -n "$node" | awk 'NR == 1 { print $2 }')
    [[ -n $state && $state != *'*' ]] && break
    sleep 0.1
  done
  (( i < 300 )) || die "$node did not register within 30 s (state ${state:-?})"
  say "$node registered: $state"
}

case $CMD in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill-node) [[ -n $NODE_ARG ]] || die "kill-node needs a node name"; cmd_kill_node "$NODE_ARG" ;;
  start-node) [[ -n $NODE_ARG ]] || die "start-node needs a node name"; cmd_start_node "$NODE_ARG" ;;
  *) die "unknown command '$CMD' (see --help)" ;;
esac
