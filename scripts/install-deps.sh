#!/usr/bin/env bash
# Installs what iommu-harness needs on Debian 12, as root: the Debian packages
# in scripts/debian-packages.txt, then the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/debian-packages.txt)
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root, or install by hand:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${packages[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
npm ci --no-audit --no-fund
