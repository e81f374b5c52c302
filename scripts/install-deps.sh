#!/usr/bin/env bash
# Installs Kiln's build and test dependencies on Debian 12 (bookworm).
# Idempotent: when every package is already installed it touches nothing (no
# apt-get update), so `make test` costs no network round trip on a warm
# machine. Runs as root, or through sudo when available.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgdal-dev gdal-bin python3-gdal python3-numpy clang-14
  libpng-dev libwebp-dev libzstd-dev libdeflate-dev libsqlite3-dev
  nlohmann-json3-dev libcli11-dev libssl-dev
  libcpp-httplib-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-format
  # libFuzzer and the sanitizer runtimes for clang-14 (make fuzz).
  libclang-rt-14-dev
  # Test and benchmark parts the cluster tests start for real.
  prometheus wrk
  # bench/tiles_bench.py's anchor: nginx serving the same tile files.
  nginx
  # The EMR clients the EMR-compatibility tests drive.
  awscli python3-boto3
  # The Slurm executor's test cluster (controller, compute daemons, auth).
  munge slurm-wlm
  # The sandbox tenant input is opened in (docs/security.md): bwrap, and
  # util-linux's prlimit and setpriv (essential, listed for clarity).
  bubblewrap util-linux
  # A sandbox whose environment reads remote sources gets its own network
  # namespace, reaching out through slirp4netns; iproute2's ip refuses
  # link-local and the host's own addresses inside it.
  slirp4netns iproute2
  # The web console's end-to-end test drives headless Chromium through
  # Selenium (tests/e2e/test_console.py, bench/console_bench.py).
  chromium chromium-driver python3-selenium
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: error: not root and sudo is not available; missing: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
# apt's progress goes to a log shown only on failure; its errors go to stderr.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${as_root[@]}" apt-get update -qq >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps: error: apt-get update failed" >&2
  exit 1
fi
# Several of these packages (nginx, prometheus, munge, slurm-wlm) would start
# a system daemon on install, some listening on every interface. Kiln's tests
# and benches start their own on loopback and stop them by PID, so none is
# started here: a policy-rc.d that refuses every start (Debian's mechanism,
# invoke-rc.d exit 101) for the length of the install, unless the machine
# has one of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
  own_policy=1
fi
trap 'rm -f "$log"; if [[ $own_policy -eq 1 ]]; then "${as_root[@]}" rm -f "$policy"; fi' EXIT
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps: error: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: done"
