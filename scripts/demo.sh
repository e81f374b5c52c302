#!/usr/bin/env bash
# `make demo`: Kiln's main job on the embedded default. Starts a warm cluster
# (`kiln serve`: SQLite job store, local worker pool, catalog on disk),
# submits the sample Landsat scene as a step, shows its progress until it is
# COMPLETED, prints where the layer is, and stops the server.
#
#   scripts/demo.sh KILN_BINARY DEFINITION
set -euo pipefail

kiln=$(realpath "$1")
definition=$2
demo_dir=$PWD/demo          # git-ignored: config, server state, logs
catalog=$PWD/catalog
mkdir -p "$demo_dir"

# A fresh token for this run; the server keeps only its SHA-256.
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
token_hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat >"$demo_dir/kiln.toml" <<TOML
# Written by scripts/demo.sh; see examples/kiln.toml for every setting.
[server]
listen = "127.0.0.1:0"
state_dir = "$demo_dir/state"

[executor]
workers = 1
slots_per_worker = 2

[[environment]]
name = "production"
token_sha256 = ["$token_hash"]
catalog = "$catalog"
# Where the sample scene is (\`make data\`): the only place its steps may read.
source_roots = ["$PWD/data/"]
TOML

rm -f "$demo_dir/port"
"$kiln" serve --config "$demo_dir/kiln.toml" --port-file "$demo_dir/port" \
  2>"$demo_dir/serve.log" &
server_pid=$!
stop_server() {
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
}
trap stop_server EXIT

for _ in $(seq 100); do
  [[ -s "$demo_dir/port" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: kiln serve exited; its log:" >&2
    cat "$demo_dir/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
export KILN_SERVER="http://127.0.0.1:$(cat "$demo_dir/port")"
export KILN_TOKEN="$token"
echo "kiln serve is up at $KILN_SERVER (pid $server_pid, log $demo_dir/serve.log)"
"$kiln" cluster status
echo
echo "Submitting $definition as a step:"
"$kiln" step submit --definition "$definition" --name "landsat demo" --wait
echo
"$kiln" step list --limit 3
