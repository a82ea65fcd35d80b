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

# QEMU 7.2's virtio-net can, rarely, stop completing transmits (the symptom of
# QEMU issue 1365; here twice in ~600 virtio-iommu remove/rescan cycles under
# TCG): the kernel's watchdog counts a transmit timeout and the harness loses
# the guest. Taking the link
# down and up restarts the queue, and the SSH session survives it. The check
# reads one sysfs file a second.
(
  seen=0
  while sleep 1; do
    read -r timeouts < /sys/class/net/eth0/queues/tx-0/tx_timeout || continue
    [ "$timeouts" = "$seen" ] && continue
    seen=$timeouts
    echo "iommu-harness: eth0 transmit timeout ($timeouts so far): link down and up" > /dev/kmsg
    ip link set eth0 down
    ip link set eth0 up
    ip route add default via 10.0.2.2
  done
) &

# The host waits for this line on the console before it tries SSH.
echo "iommu-harness: guest ready" > /dev/kmsg
/usr/sbin/dropbear -F -s -p 22 -r /etc/dropbear/host_ed25519 &

while true; do
  sleep 3600
done
