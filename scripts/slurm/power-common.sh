# Shared by resume-node.sh and suspend-node.sh, the power programs of the
# kilntest cluster (scripts/slurm-cluster.sh): slurmctld runs them with a
# bare environment (PATH unset) and stdin/stdout/stderr closed.
#
# power_setup WHAT: sets conf and state (the cluster's slurm.conf and its
# directory, the state directory), exports SLURM_CONF and sends all output
# to <state>/log/power.log. `found` says where conf came from.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# slurmctld passes SLURM_CONF; failing that, take slurmctld's own -f argument.
find_conf() {
  if [[ -n ${SLURM_CONF:-} && -f $SLURM_CONF ]]; then echo "$SLURM_CONF (from SLURM_CONF)"; return; fi
  local pid=$PPID args i
  while [[ $pid -gt 1 ]]; do
    mapfile -d '' args <"/proc/$pid/cmdline" || true
    if [[ ${args[0]:-} == *slurmctld ]]; then
      for (( i = 1; i + 1 < ${#args[@]}; i++ )); do
        [[ ${args[$i]} == -f ]] && { echo "${args[$((i + 1))]} (from slurmctld -f)"; return; }
      done
    fi
    pid=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$pid/stat")
  done
  return 1
}

power_setup() {
  local what=$1
  shift
  found=$(find_conf) || { logger -t "kiln-slurm-$what" "cannot find slurm.conf for $*" 2>/dev/null; exit 1; }
  conf=${found% (from *}
  export SLURM_CONF=$conf
  state=$(dirname "$conf")
  exec </dev/null >>"$state/log/power.log" 2>&1
}
