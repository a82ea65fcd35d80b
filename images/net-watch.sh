#!/bin/sh
# Keeps the guest reachable: under TCG, QEMU 7.2 now and then stops completing
# virtio-net's transmits right after a PCI rescan (4 times in ~2400 rescans, 3
# of them with virtio-iommu): the queue stalls and the harness loses its SSH
# session. Taking the link down and up runs the queue's poll again (the
# workaround known for QEMU issue 1365's symptom); the SSH session survives it.
# A transmit counts as stuck when the bytes in flight (BQL) stay the same and
# non-zero for two checks in a row, or when the kernel's own watchdog counted a
# timeout. Each repair is written to the kernel log. Reads two sysfs files per
# check. It does not help when QEMU itself hangs (the guest goes silent).
#   net-watch [INTERVAL_SECONDS]   (NET_WATCH_SYSFS, NET_WATCH_KMSG, NET_WATCH_IP for tests:
#   busybox's sh runs its own applets before PATH, so a fake `ip` must be named by path)
interval=${1:-1}
queue=${NET_WATCH_SYSFS:-/sys/class/net/eth0}/queues/tx-0
kmsg=${NET_WATCH_KMSG:-/dev/kmsg}
ip=${NET_WATCH_IP:-ip}
last_inflight=0
same=0
last_timeouts=0
read -r last_timeouts < "$queue/tx_timeout" 2>/dev/null || last_timeouts=0
while sleep "$interval"; do
  inflight=0
  timeouts=$last_timeouts
  read -r inflight < "$queue/byte_queue_limits/inflight" 2>/dev/null || inflight=0
  read -r timeouts < "$queue/tx_timeout" 2>/dev/null || timeouts=$last_timeouts
  if [ "$inflight" != 0 ] && [ "$inflight" = "$last_inflight" ]; then same=$((same + 1)); else same=0; fi
  last_inflight=$inflight
  why=
  [ "$same" -ge 2 ] && why="$inflight bytes in flight, unchanged"
  [ "$timeouts" != "$last_timeouts" ] && why="transmit timeout $timeouts"
  last_timeouts=$timeouts
  [ -n "$why" ] || continue
  echo "iommu-harness: eth0 transmit stalled ($why): link down and up" > "$kmsg"
  "$ip" link set eth0 down
  "$ip" link set eth0 up
  "$ip" route add default via 10.0.2.2
  same=0
  last_inflight=0
done
