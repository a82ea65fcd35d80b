#!/usr/bin/env bash
# Quick start, step one: install everything, then run the main job end to end
# on the default kernel (Debian's 6.12 source) with both vIOMMUs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
mkdir -p out
exec node bin/iommu-harness.js run --iommu intel,virtio --json out/quickstart.json
