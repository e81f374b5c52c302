#!/usr/bin/env bash
# Puts the demo/test imagery into data/ (git-ignored): L7_ETMs.tif, a
# 349x352 6-band Landsat 7 ETM+ scene near Olinda, Brazil, plus the other
# GeoTIFFs that Debian's r-cran-stars package ships as test fixtures
# (geomatrix.tif, lc.tif, na.tif, olinda_dem_utm25s.tif...). They come from a
# Debian package so the fetch uses only the ordinary apt client.
# Idempotent: does nothing when data/L7_ETMs.tif is already there and valid.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$root/data"
target="$data/L7_ETMs.tif"

# Checks the scene is the one the tests expect: 349x352 pixels, 6 bands.
verify() {
  local info
  if ! info=$(gdalinfo "$1" 2>&1); then
    echo "fetch-data: error: gdalinfo cannot read $1:" >&2
    echo "$info" >&2
    return 1
  fi
  if ! grep -q '^Size is 349, 352$' <<<"$info"; then
    echo "fetch-data: error: $1 is not 349x352: $(grep '^Size is' <<<"$info")" >&2
    return 1
  fi
  local bands
  bands=$(grep -c '^Band [0-9]' <<<"$info" || true)
  if [[ "$bands" -ne 6 ]]; then
    echo "fetch-data: error: $1 has $bands bands, expected 6" >&2
    return 1
  fi
}

if [[ -f "$target" ]] && verify "$target" 2>/dev/null; then
  echo "fetch-data: $target present"
  exit 0
fi

command -v gdalinfo >/dev/null || {
  echo "fetch-data: error: gdalinfo not found; run scripts/install-deps.sh first" >&2
  exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download runs as the unprivileged _apt user when started as root;
# let it write into the download directory so apt does not warn that it
# cannot drop privileges.
chmod 755 "$tmp"
if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then
  chown _apt "$tmp"
fi

echo "fetch-data: downloading r-cran-stars (Debian package with the sample scenes)"
if ! (cd "$tmp" && apt-get download -qq r-cran-stars) >"$tmp/apt.log" 2>&1; then
  # A machine that never ran apt-get update has no package lists yet.
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq >>"$tmp/apt.log" 2>&1 || true
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq >>"$tmp/apt.log" 2>&1 || true
  fi
  if ! (cd "$tmp" && apt-get download -qq r-cran-stars) >>"$tmp/apt.log" 2>&1; then
    cat "$tmp/apt.log" >&2
    echo "fetch-data: error: could not download the Debian package r-cran-stars" \
      "(is a Debian mirror reachable?); $target was not created" >&2
    exit 1
  fi
fi

deb=$(ls "$tmp"/r-cran-stars_*.deb 2>/dev/null | head -n1 || true)
if [[ -z "$deb" ]]; then
  echo "fetch-data: error: apt-get download produced no r-cran-stars .deb" >&2
  exit 1
fi
mkdir -p "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
tifs=("$tmp"/x/usr/lib/R/site-library/stars/tif/*.tif)
if [[ ! -f "$tmp/x/usr/lib/R/site-library/stars/tif/L7_ETMs.tif" ]]; then
  echo "fetch-data: error: $(basename "$deb") has no stars/tif/L7_ETMs.tif" >&2
  exit 1
fi

mkdir -p "$data"
# Copy beside the target and rename, so an interrupted run never leaves a
# truncated L7_ETMs.tif that a later run would take as present.
for f in "${tifs[@]}"; do
  name=$(basename "$f")
  cp "$f" "$data/.$name.part"
  mv -f "$data/.$name.part" "$data/$name"
done
verify "$target"
echo "fetch-data: wrote ${#tifs[@]} files into $data:" $(cd "$data" && ls *.tif)
