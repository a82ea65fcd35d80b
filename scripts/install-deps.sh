#!/usr/bin/env bash
# Installs what iommu-harness needs on Debian 12, as root: the npm dependencies,
# then the Debian packages of the requirement registry
# (harness/host/requirements.ts), the one list `doctor` and the preflight check.
# Extra arguments are purposes (harness kernel-build debian-source debian-6.12
# debian-6.1 debian-download arm64 tests ci); none means all but ci.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
mapfile -t packages < <(node --import tsx scripts/debian-packages.ts "$@")
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root, or install by hand:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${packages[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
