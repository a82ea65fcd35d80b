#!/bin/sh
# PID 1 of the guest. It must never exit: the kernel panics when init dies,
# and with panic=-1 that ends the machine.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp

# QEMU user networking: the guest is always 10.0.2.15 and needs no DHCP.
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2

# Repairs the rare virtio-net transmit stall that would lose the SSH session (see the script).
/bin/net-watch &

# The host waits for this line on the console before it tries SSH.
echo "iommu-harness: guest ready" > /dev/kmsg
/usr/sbin/dropbear -F -s -p 22 -r /etc/dropbear/host_ed25519 &

while true; do
  sleep 3600
done
