#!/usr/bin/env bash
# Runs a command in this checkout inside a fresh Debian 12 root, as a new user's
# machine would be: debootstrap minbase with the bookworm, bookworm-updates and
# bookworm-security suites a standard install has, the host's Node 20 and CA
# bundle copied in, nothing else. The command installs what the project needs
# itself (scripts/install-deps.sh), so a package missing from the requirement
# registry fails here and not on a user's machine.
#
#   scripts/fresh-root.sh [--keep-builds] -- COMMAND...
#
# --keep-builds bind-mounts the harness's kernel sources, worktrees, build
# directories, their locks and ccache from the host, so kernels rebuild incrementally (and a
# harness running on the host meanwhile waits its turn instead of building in the same tree); the
# finished-kernel and image caches stay empty, so every kernel is still built
# (make, headers_install) and every guest image made by the root's own tools.
# The checkout is mounted at /project and ../shared at /shared. As root.
set -euo pipefail
keep_builds=0
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-builds) keep_builds=1; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--keep-builds] -- COMMAND..." >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--keep-builds] -- COMMAND..." >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
project=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$project/.." && pwd)/shared

command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
}

# The Debian mirror the host itself uses (its first `bookworm` source).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "$0: no Debian mirror found in the host's apt sources" >&2; exit 3; }

root=$(mktemp -d /var/tmp/iommu-harness-root.XXXXXX)
# The mounts live in a private mount namespace (below) and vanish with it, so
# removing the root never reaches through a bind mount into the host.
trap 'rm -rf --one-file-system "$root"' EXIT
started=$(date +%s)
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
  tail -20 "$root.debootstrap.log" >&2; echo "$0: debootstrap failed (log: $root.debootstrap.log)" >&2; exit 3; }
rm -f "$root.debootstrap.log"
echo "fresh-root: Debian 12 minbase root in $(( $(date +%s) - started )) s at $root"

# The suites of a standard install (the 6.12 source comes from bookworm-security).
rm -f "$root/etc/apt/sources.list"
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
else
  cp /etc/apt/sources.list "$root/etc/apt/sources.list"
fi
# Node 20 and npm from the host, and the CA bundle and npm settings it trusts.
cp /usr/bin/node "$root/usr/bin/node"
mkdir -p "$root/usr/lib/node_modules" "$root/usr/etc" "$root/etc/ssl/certs"
cp -a /usr/lib/node_modules/npm "$root/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
for npmrc in /etc/npmrc /usr/etc/npmrc; do [ -f "$npmrc" ] && cp "$npmrc" "$root$npmrc"; done

cache=/root/.cache/iommu-harness
mkdir -p "$root/project" "$root/shared" "$root$cache"
binds=("$project:/project")
[ -d "$shared" ] && binds+=("$shared:/shared")
if [ "$keep_builds" = 1 ]; then
  # With their locks: a harness on the host may build in the same worktree at the same time.
  for part in sources worktrees builds locks; do
    mkdir -p "$cache/$part" "$root$cache/$part"
    binds+=("$cache/$part:$cache/$part")
  done
  mkdir -p /root/.cache/ccache "$root/root/.cache/ccache"
  binds+=("/root/.cache/ccache:/root/.cache/ccache")
fi
# Downloaded .debs only: apt still verifies and installs every package in the root.
binds+=("/var/cache/apt/archives:/var/cache/apt/archives")

export CI_VALUE=${CI:-}
exec_inside() {
  # A mount and PID namespace of its own: when it ends, every process in the
  # root ends with it (--kill-child kills its first process, whose end kills the rest).
  exec unshare --mount --propagation private --pid --fork --kill-child bash -euo pipefail -c '
    root=$1; shift
    # The root as a mount point of its own, as / is on a real machine: unshare
    # and mount --make-private inside it (the tests use them) need one.
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    nbinds=$1; shift
    for ((i = 0; i < nbinds; i++)); do
      spec=$1; shift
      mount --bind "${spec%%:*}" "$root${spec#*:}"
    done
    exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="$CI_VALUE" IOMMU_HARNESS_CACHE='"$cache"' \
      IOMMU_HARNESS_ACCEL="${IOMMU_HARNESS_ACCEL:-}" IOMMU_HARNESS_FULL="${IOMMU_HARNESS_FULL:-}" \
      bash -c "cd /project && exec \"\$@\"" bash "$@"
  ' bash "$root" "${#binds[@]}" "${binds[@]}" "$@"
}
mkdir -p "$root/var/cache/apt/archives"
# In the background, so a signal to this script is handled at once (bash defers
# traps until a foreground child ends): the namespace is ended, then the root removed.
exec_inside "$@" &
inside=$!
for signal in INT TERM HUP; do
  trap 'kill -KILL "$inside" 2>/dev/null; wait "$inside" 2>/dev/null; exit 143' "$signal"
done
wait "$inside"
