// SPDX-License-Identifier: MIT
/*
 * vfio-helper: drive QEMU's edu PCI device (1234:11e8) through VFIO inside
 * the iommu-harness guest.
 *
 *   vfio-helper container BDF [--dma] [--hold-ms N [--until-request]]
 *   vfio-helper iommufd   BDF [--dma] [--hold-ms N [--until-request]]
 *   vfio-helper noiommu   BDF [--hold-ms N [--until-request]]
 *
 * --until-request: hold only until the kernel asks for the device back (the
 * VFIO device request IRQ, which a removal raises while it waits for the fd
 * to close), as QEMU does, at most N ms; no request in that time is an error.
 *
 * The harness has already bound BDF to vfio-pci. Progress goes to stdout as
 * one key=value line per milestone, then "ok". Failures print
 * "error: <step>: <reason>" to stderr and exit 1; usage errors exit 2;
 * `iommufd` on a helper built without that path exits 3.
 *
 * Built on the host against the guest kernel's own uapi headers (6.12, 6.1):
 *   gcc -static -O2 -Wall -Wextra -Werror -I$HDRS/include -o vfio-helper vfio-helper.c
 * Only libc and uapi headers: the guest is a busybox initramfs.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/pci_regs.h>
#include <linux/vfio.h>
/*
 * The iommufd cdev path needs linux/iommufd.h (6.2) and VFIO's device cdev
 * (6.6). Against an older tree's headers (6.1) the helper is built without
 * it and `iommufd` exits 3; the harness skips that step on such kernels.
 */
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#if defined(VFIO_DEVICE_BIND_IOMMUFD) && defined(IOMMU_IOAS_ALLOC)
#define HAVE_VFIO_CDEV 1
#endif

/* ---- constants of the test setup ------------------------------------- */

#define EDU_VENDOR_ID 0x1234
#define EDU_DEVICE_ID 0x11e8

/*
 * edu's DMA mask is 28 bits and QEMU 7.2 aborts the whole VM on an
 * out-of-range edu DMA, so every IOVA we hand the device stays far below
 * 256 MiB, and every device-side address stays inside edu's 4 KiB buffer.
 */
#define DMA_IOVA     0x100000ULL
#define DMA_BUF_SIZE (2UL * 1024 * 1024)
/*
 * QEMU 7.2's edu rejects a transfer that ends exactly at the end of its 4 KiB
 * buffer (its range check compares the end with <, and a rejected DMA aborts
 * the whole QEMU process), so stay one half-buffer inside it.
 */
#define DMA_XFER     2048UL

/* edu BAR0 register layout (QEMU docs/specs/edu.rst, hw/misc/edu.c). */
#define EDU_REG_ID       0x00 /* 32-bit only: edu rejects other widths below 0x80 */
#define EDU_ID_VALUE     0x010000edU
#define EDU_REG_DMA_SRC  0x80 /* 64-bit registers from 0x80 on */
#define EDU_REG_DMA_DST  0x88
#define EDU_REG_DMA_CNT  0x90
#define EDU_REG_DMA_CMD  0x98
#define EDU_DMA_RUN      0x1
#define EDU_DMA_TO_RAM   0x2 /* direction bit: 0 = RAM->EDU, 1 = EDU->RAM */
/* bit2 (raise irq) is never set: nobody here listens for the interrupt. */
#define EDU_DMA_BUF_ADDR 0x40000ULL
#define EDU_DMA_BUF_SIZE 4096UL

/* edu completes a DMA from a 100 ms virtual-clock timer; TCG is slow. */
#define DMA_TIMEOUT_MS 2000
#define DMA_POLL_NS    (1000L * 1000L) /* 1 ms */

/* ---- output helpers --------------------------------------------------- */

static void die(const char *step, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));

static void die(const char *step, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "error: %s: ", step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* For failures that carry an errno (captured by the caller before any I/O). */
static void die_errno(const char *step, int err) __attribute__((noreturn));

static void die_errno(const char *step, int err)
{
	die(step, "%s", strerror(err));
}

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
	fprintf(stderr,
		"usage: vfio-helper container BDF [--dma] [--hold-ms N [--until-request]]\n"
		"       vfio-helper iommufd BDF [--dma] [--hold-ms N [--until-request]]\n"
		"       vfio-helper noiommu BDF [--hold-ms N [--until-request]]\n");
	exit(2);
}

static void milestone(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void milestone(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	/*
	 * stdout is a pipe when driven over SSH; flush each line so the harness
	 * sees how far we got even if a later step blocks in the kernel.
	 */
	fflush(stdout);
}

/* ioctl wrapper: every failure names the ioctl. */
#define XIOCTL(fd, req, arg)                                          \
	do {                                                          \
		if (ioctl((fd), (req), (arg)) < 0)                    \
			die_errno(#req, errno);                       \
	} while (0)

static int xopen(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;
		char step[PATH_MAX + 8];

		snprintf(step, sizeof(step), "open %s", path);
		die_errno(step, err);
	}
	return fd;
}

static void xclose(int fd, const char *what)
{
	if (close(fd) < 0) {
		int err = errno;
		char step[128];

		snprintf(step, sizeof(step), "close %s", what);
		die_errno(step, err);
	}
}

/* ---- time ------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ns(long ns)
{
	struct timespec req = { .tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L };

	/* A signal must not shorten the hold or a poll interval. */
	while (nanosleep(&req, &req) < 0 && errno == EINTR)
		;
}

static bool until_request;

/* An eventfd the kernel signals when it wants the device back (a removal waiting for us). */
static int request_eventfd(int devfd)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0)
		die_errno("eventfd", errno);
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_REQ_IRQ_INDEX;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(int32_t));
	XIOCTL(devfd, VFIO_DEVICE_SET_IRQS, set);
	return efd;
}

static void hold(int devfd, long hold_ms)
{
	if (hold_ms <= 0)
		return;
	int efd = until_request ? request_eventfd(devfd) : -1;
	milestone("holding");
	int64_t start = now_ms();
	if (efd < 0) {
		sleep_ns(hold_ms * 1000000L);
		milestone("hold=done ms=%lld", (long long)(now_ms() - start));
		return;
	}
	for (;;) {
		long left = hold_ms - (long)(now_ms() - start);
		struct pollfd p = { .fd = efd, .events = POLLIN };
		int n = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die_errno("poll device request", errno);
		if (n == 0)
			die("device request", "the kernel did not ask for the device back within %ld ms", hold_ms);
		break;
	}
	milestone("request=yes ms=%lld", (long long)(now_ms() - start));
	xclose(efd, "request eventfd");
}

/* ---- sysfs lookups ---------------------------------------------------- */

/*
 * Accept "DDDD:BB:DD.F" or "BB:DD.F". VFIO_GROUP_GET_DEVICE_FD matches the
 * full dev_name(), so the short form gets the 0000 domain prepended. Only
 * hex digits, ':' and '.' are allowed, since BDF ends up in sysfs paths.
 */
static void normalize_bdf(const char *in, char *out, size_t outsz)
{
	unsigned dom, bus, dev, fn;
	char tail;

	for (const char *p = in; *p; p++)
		if (!strchr("0123456789abcdefABCDEF:.", *p))
			usage();
	if (sscanf(in, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) == 4 ||
	    (dom = 0, sscanf(in, "%2x:%2x.%1x%c", &bus, &dev, &fn, &tail) == 3)) {
		if (dev > 0x1f || fn > 7)
			usage();
		snprintf(out, outsz, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
		return;
	}
	usage();
}

/* /sys/bus/pci/devices/BDF/iommu_group -> ../../../kernel/iommu_groups/N */
static int iommu_group_of(const char *bdf)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		die_errno("readlink iommu_group", errno);
	target[n] = '\0';

	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	char *end;
	errno = 0;
	long group = strtol(base, &end, 10);
	if (errno || end == base || *end != '\0' || group < 0 || group > INT_MAX)
		die("iommu_group", "unexpected link target '%s'", target);
	return (int)group;
}

#ifdef HAVE_VFIO_CDEV
/* /sys/bus/pci/devices/BDF/vfio-dev/vfioX names the cdev /dev/vfio/devices/vfioX. */
static void vfio_cdev_of(const char *bdf, char *name, size_t namesz)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	bool found = false;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		die_errno("opendir vfio-dev", errno);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "vfio", 4) != 0)
			continue;
		/* Names are kernel-generated ("vfio%d"); reject anything else. */
		if (strlen(de->d_name) >= namesz ||
		    strspn(de->d_name + 4, "0123456789") != strlen(de->d_name + 4) ||
		    de->d_name[4] == '\0')
			continue;
		snprintf(name, namesz, "%s", de->d_name);
		found = true;
		break;
	}
	closedir(d);
	if (!found)
		die("vfio-dev", "no vfioX entry under %s (CONFIG_VFIO_DEVICE_CDEV?)", path);
}
#endif

/* ---- device access (config space and BAR0) ---------------------------- */

struct region {
	uint64_t offset; /* offset of the region within the device fd */
	uint64_t size;
	uint32_t flags;
};

static struct region region_info(int devfd, uint32_t index, const char *step)
{
	/*
	 * argsz = sizeof(base struct): if the region has capabilities the kernel
	 * only raises argsz to tell us; the fields we need are filled anyway.
	 */
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0) {
		int err = errno;
		char s[96];

		snprintf(s, sizeof(s), "VFIO_DEVICE_GET_REGION_INFO(%s)", step);
		die_errno(s, err);
	}
	return (struct region){ .offset = info.offset, .size = info.size, .flags = info.flags };
}

/* Full-length pread/pwrite on the device fd; short transfers are errors here. */
static void dev_pread(int devfd, void *buf, size_t len, uint64_t off, const char *step)
{
	ssize_t n = pread(devfd, buf, len, (off_t)off);

	if (n < 0)
		die_errno(step, errno);
	if ((size_t)n != len)
		die(step, "short read (%zd of %zu bytes)", n, len);
}

static void dev_pwrite(int devfd, const void *buf, size_t len, uint64_t off, const char *step)
{
	ssize_t n = pwrite(devfd, buf, len, (off_t)off);

	if (n < 0)
		die_errno(step, errno);
	if ((size_t)n != len)
		die(step, "short write (%zd of %zu bytes)", n, len);
}

struct bar {
	int devfd;
	struct region r;
	volatile uint8_t *map; /* NULL: fall back to pread/pwrite on the fd */
};

/*
 * Read the PCI ID from config space (refuse to poke a non-edu BAR), then set
 * COMMAND.MEMORY (BAR decode: an mmap'd BAR faults with SIGBUS while vfio-pci
 * sees memory decode off) and, for DMA, COMMAND.MASTER. The config region is
 * little-endian, as is x86.
 */
static void enable_device(int devfd, bool bus_master)
{
	struct region cfg = region_info(devfd, VFIO_PCI_CONFIG_REGION_INDEX, "config");
	uint16_t ids[2], cmd;

	dev_pread(devfd, ids, sizeof(ids), cfg.offset + PCI_VENDOR_ID, "read config ids");
	milestone("pci_id=%04x:%04x", ids[0], ids[1]);
	if (ids[0] != EDU_VENDOR_ID || ids[1] != EDU_DEVICE_ID)
		die("pci_id", "device is %04x:%04x, not edu %04x:%04x", ids[0], ids[1],
		    EDU_VENDOR_ID, EDU_DEVICE_ID);

	dev_pread(devfd, &cmd, sizeof(cmd), cfg.offset + PCI_COMMAND, "read PCI_COMMAND");
	cmd |= PCI_COMMAND_MEMORY;
	if (bus_master)
		cmd |= PCI_COMMAND_MASTER;
	dev_pwrite(devfd, &cmd, sizeof(cmd), cfg.offset + PCI_COMMAND, "write PCI_COMMAND");
	dev_pread(devfd, &cmd, sizeof(cmd), cfg.offset + PCI_COMMAND, "read PCI_COMMAND");
	if (!(cmd & PCI_COMMAND_MEMORY) || (bus_master && !(cmd & PCI_COMMAND_MASTER)))
		die("PCI_COMMAND", "bits did not stick (0x%04x)", cmd);
	milestone("pci_command=0x%04x", cmd);
}

static struct bar bar0_open(int devfd)
{
	struct bar b = { .devfd = devfd };

	b.r = region_info(devfd, VFIO_PCI_BAR0_REGION_INDEX, "BAR0");
	if (b.r.size < 0x100)
		die("BAR0", "region too small (%llu bytes)", (unsigned long long)b.r.size);
	if (b.r.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		void *p = mmap(NULL, b.r.size, PROT_READ | PROT_WRITE, MAP_SHARED, devfd,
			       (off_t)b.r.offset);
		if (p == MAP_FAILED)
			die_errno("mmap BAR0", errno);
		b.map = p;
	}
	milestone("bar0=ok size=%llu access=%s", (unsigned long long)b.r.size,
		  b.map ? "mmap" : "rw");
	return b;
}

static void bar0_close(struct bar *b)
{
	if (b->map && munmap((void *)b->map, b->r.size) < 0)
		die_errno("munmap BAR0", errno);
	b->map = NULL;
}

/*
 * edu answers only 4-byte accesses below 0x80 and 4- or 8-byte accesses
 * from 0x80 on (anything else reads as ~0 / is dropped), so the access
 * width must be exact: volatile aligned loads/stores through the mmap,
 * or a pread/pwrite of exactly that size (vfio-pci keeps aligned 4/8-byte
 * fd accesses as single MMIO accesses).
 */
static uint32_t bar_read32(struct bar *b, uint64_t reg)
{
	uint32_t v;

	if (b->map)
		return *(volatile uint32_t *)(b->map + reg);
	dev_pread(b->devfd, &v, sizeof(v), b->r.offset + reg, "read BAR0");
	return v;
}

static uint64_t bar_read64(struct bar *b, uint64_t reg)
{
	uint64_t v;

	if (b->map)
		return *(volatile uint64_t *)(b->map + reg);
	dev_pread(b->devfd, &v, sizeof(v), b->r.offset + reg, "read BAR0");
	return v;
}

static void bar_write64(struct bar *b, uint64_t reg, uint64_t v)
{
	if (b->map) {
		*(volatile uint64_t *)(b->map + reg) = v;
		return;
	}
	dev_pwrite(b->devfd, &v, sizeof(v), b->r.offset + reg, "write BAR0");
}

static void check_edu_id(struct bar *b)
{
	uint32_t id = bar_read32(b, EDU_REG_ID);

	milestone("edu_id=0x%08x", id);
	if (id != EDU_ID_VALUE)
		die("edu id", "read 0x%08x, expected 0x%08x", id, EDU_ID_VALUE);
}

/* Wait for edu's DMA engine to drop RUN; edu ignores register writes while it is set. */
static void edu_wait_idle(struct bar *b)
{
	int64_t deadline = now_ms() + DMA_TIMEOUT_MS;

	for (;;) {
		uint64_t cmd = bar_read64(b, EDU_REG_DMA_CMD);

		if (cmd == UINT64_MAX)
			die("dma", "BAR0 reads all-ones (device gone or decode off)");
		if (!(cmd & EDU_DMA_RUN))
			return;
		if (now_ms() >= deadline)
			die("dma", "dma timeout");
		sleep_ns(DMA_POLL_NS);
	}
}

static void edu_dma(struct bar *b, uint64_t src, uint64_t dst, uint64_t cmd)
{
	edu_wait_idle(b);
	bar_write64(b, EDU_REG_DMA_SRC, src);
	bar_write64(b, EDU_REG_DMA_DST, dst);
	bar_write64(b, EDU_REG_DMA_CNT, DMA_XFER);
	/* Writing cmd with RUN set arms edu's timer; the transfer happens later. */
	bar_write64(b, EDU_REG_DMA_CMD, cmd | EDU_DMA_RUN);
	edu_wait_idle(b);
}

/*
 * Round trip through the vIOMMU: RAM(iova) -> edu buffer -> RAM(iova+4K),
 * then compare. The pattern is seeded per run so that a stale edu buffer
 * left by an earlier run cannot make a failed RAM->EDU leg look good.
 */
static void dma_check(int devfd, uint8_t *buf)
{
	enable_device(devfd, true);
	struct bar b = bar0_open(devfd);
	check_edu_id(&b);

	uint8_t *src = buf, *dst = buf + DMA_XFER;
	uint32_t x = (uint32_t)getpid() * 2654435761u ^ (uint32_t)now_ms();

	for (size_t i = 0; i < DMA_XFER; i++) {
		x = x * 1103515245u + 12345u;
		src[i] = (uint8_t)(x >> 16);
	}
	memset(dst, 0, DMA_XFER);
	/* The device reads RAM after our MMIO kick: make the pattern visible first. */
	atomic_thread_fence(memory_order_seq_cst);

	static_assert(DMA_XFER <= EDU_DMA_BUF_SIZE, "transfer exceeds edu buffer");
	static_assert(DMA_IOVA + DMA_BUF_SIZE <= (1ULL << 28), "IOVA beyond edu DMA mask");

	edu_dma(&b, DMA_IOVA, EDU_DMA_BUF_ADDR, 0);
	edu_dma(&b, EDU_DMA_BUF_ADDR, DMA_IOVA + DMA_XFER, EDU_DMA_TO_RAM);
	atomic_thread_fence(memory_order_seq_cst);

	if (memcmp(src, dst, DMA_XFER) != 0)
		die("dma", "dma data mismatch");
	milestone("dma=ok bytes=%lu", DMA_XFER);
	bar0_close(&b);
}

static uint8_t *alloc_dma_buffer(void)
{
	void *p = mmap(NULL, DMA_BUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die_errno("mmap dma buffer", errno);
	/* Touch it so the pin at map time does not race first-fault COW pages. */
	memset(p, 0, DMA_BUF_SIZE);
	return p;
}

/* ---- legacy container/group path (type1v2 and no-iommu) -------------- */

static void run_container(const char *bdf, bool noiommu, bool dma, long hold_ms)
{
	const long iommu_type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
	char path[PATH_MAX];

	int group = iommu_group_of(bdf);
	milestone("group=%d", group);

	int container = xopen("/dev/vfio/vfio", O_RDWR);
	int api = ioctl(container, VFIO_GET_API_VERSION);
	if (api < 0)
		die_errno("VFIO_GET_API_VERSION", errno);
	if (api != VFIO_API_VERSION)
		die("VFIO_GET_API_VERSION", "kernel API %d, built for %d", api, VFIO_API_VERSION);
	/* CHECK_EXTENSION returns >0 for yes and 0 (not an error) for no. */
	int ext = ioctl(container, VFIO_CHECK_EXTENSION, iommu_type);
	if (ext < 0)
		die_errno("VFIO_CHECK_EXTENSION", errno);
	if (ext == 0)
		die("VFIO_CHECK_EXTENSION", "%s not supported%s",
		    noiommu ? "VFIO_NOIOMMU_IOMMU" : "VFIO_TYPE1v2_IOMMU",
		    noiommu ? " (vfio.enable_unsafe_noiommu_mode=1?)" : "");
	milestone("container=ok api=%d", api);

	/* A no-iommu group gets its own node name so it is never mistaken for a safe one. */
	snprintf(path, sizeof(path), noiommu ? "/dev/vfio/noiommu-%d" : "/dev/vfio/%d", group);
	int groupfd = xopen(path, O_RDWR);

	struct vfio_group_status status = { .argsz = sizeof(status) };
	XIOCTL(groupfd, VFIO_GROUP_GET_STATUS, &status);
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		die("VFIO_GROUP_GET_STATUS", "group %d not viable (a device in it is not bound to vfio-pci)", group);
	milestone("group_fd=ok path=%s viable=1", path);

	/* SET_CONTAINER takes a pointer to the fd, not the fd value. */
	XIOCTL(groupfd, VFIO_GROUP_SET_CONTAINER, &container);
	milestone("set_container=ok");

	/* SET_IOMMU takes the type by value. */
	if (ioctl(container, VFIO_SET_IOMMU, iommu_type) < 0)
		die_errno("VFIO_SET_IOMMU", errno);
	milestone("set_iommu=ok type=%s", noiommu ? "noiommu" : "type1v2");

	int devfd = ioctl(groupfd, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (devfd < 0)
		die_errno("VFIO_GROUP_GET_DEVICE_FD", errno);
	milestone("device_fd=ok");

	uint8_t *buf = NULL;
	if (noiommu) {
		/* No DMA mapping exists without an IOMMU: just prove BAR access works. */
		enable_device(devfd, false);
		struct bar b = bar0_open(devfd);
		check_edu_id(&b);
		bar0_close(&b);
	} else {
		buf = alloc_dma_buffer();
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)buf,
			.iova = DMA_IOVA,
			.size = DMA_BUF_SIZE,
		};
		XIOCTL(container, VFIO_IOMMU_MAP_DMA, &map);
		milestone("map=ok iova=0x%llx size=%lu", DMA_IOVA, DMA_BUF_SIZE);
		if (dma)
			dma_check(devfd, buf);
	}

	hold(devfd, hold_ms);

	if (!noiommu) {
		struct vfio_iommu_type1_dma_unmap unmap = {
			.argsz = sizeof(unmap),
			.iova = DMA_IOVA,
			.size = DMA_BUF_SIZE,
		};
		XIOCTL(container, VFIO_IOMMU_UNMAP_DMA, &unmap);
		/* The kernel writes back how much it actually unmapped. */
		if (unmap.size != DMA_BUF_SIZE)
			die("VFIO_IOMMU_UNMAP_DMA", "unmapped %llu bytes, expected %lu",
			    (unsigned long long)unmap.size, DMA_BUF_SIZE);
		milestone("unmap=ok size=%llu", (unsigned long long)unmap.size);
		if (munmap(buf, DMA_BUF_SIZE) < 0)
			die_errno("munmap dma buffer", errno);
	}

	xclose(devfd, "device fd");
	milestone("device_close=ok");
	/*
	 * UNSET_CONTAINER takes no argument; it fails with EBUSY while a device fd
	 * is open. When the device was unplugged while we held it, closing the
	 * device fd let the removal finish, and that detached the group from the
	 * container already: EINVAL then means "nothing left to unset".
	 */
	if (ioctl(groupfd, VFIO_GROUP_UNSET_CONTAINER) < 0) {
		if (errno != EINVAL)
			die_errno("VFIO_GROUP_UNSET_CONTAINER", errno);
		milestone("unset_container=gone");
	} else {
		milestone("unset_container=ok");
	}
	xclose(groupfd, "group fd");
	xclose(container, "container fd");
	milestone("close=ok");
}

/* ---- iommufd cdev path ------------------------------------------------ */

#ifdef HAVE_VFIO_CDEV
static void run_iommufd(const char *bdf, bool dma, long hold_ms)
{
	char name[64], path[PATH_MAX];

	vfio_cdev_of(bdf, name, sizeof(name));
	milestone("vfio_dev=%s", name);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	int devfd = xopen(path, O_RDWR);
	milestone("device_fd=ok path=%s", path);

	int iommufd = xopen("/dev/iommu", O_RDWR);
	milestone("iommufd=ok");

	/* Until BIND succeeds the cdev fd refuses every other device ioctl. */
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.flags = 0,
		.iommufd = iommufd,
	};
	XIOCTL(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	milestone("bind=ok devid=%u", bind.out_devid);

	/* iommufd structs start with "size" rather than VFIO's "argsz". */
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	XIOCTL(iommufd, IOMMU_IOAS_ALLOC, &alloc);
	milestone("ioas=ok id=%u", alloc.out_ioas_id);

	/* pt_id goes in as the IOAS and comes back as the auto-created HWPT. */
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = alloc.out_ioas_id,
	};
	XIOCTL(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
	milestone("attach=ok hwpt=%u", attach.pt_id);

	uint8_t *buf = alloc_dma_buffer();
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = alloc.out_ioas_id,
		.user_va = (uintptr_t)buf,
		.length = DMA_BUF_SIZE,
		.iova = DMA_IOVA,
	};
	XIOCTL(iommufd, IOMMU_IOAS_MAP, &map);
	milestone("map=ok iova=0x%llx size=%lu", (unsigned long long)map.iova, DMA_BUF_SIZE);

	if (dma)
		dma_check(devfd, buf);

	hold(devfd, hold_ms);

	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = alloc.out_ioas_id,
		.iova = DMA_IOVA,
		.length = DMA_BUF_SIZE,
	};
	XIOCTL(iommufd, IOMMU_IOAS_UNMAP, &unmap);
	/* length is written back with the number of bytes actually unmapped. */
	if (unmap.length != DMA_BUF_SIZE)
		die("IOMMU_IOAS_UNMAP", "unmapped %llu bytes, expected %lu",
		    (unsigned long long)unmap.length, DMA_BUF_SIZE);
	milestone("unmap=ok size=%llu", (unsigned long long)unmap.length);
	if (munmap(buf, DMA_BUF_SIZE) < 0)
		die_errno("munmap dma buffer", errno);

	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	XIOCTL(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
	milestone("detach=ok");

	/* Closing the device fd unbinds it; the IOAS dies with the iommufd. */
	xclose(devfd, "device fd");
	milestone("device_close=ok");
	xclose(iommufd, "iommufd");
	milestone("close=ok");
}
#else
static void run_iommufd(const char *bdf, bool dma, long hold_ms)
{
	(void)bdf;
	(void)dma;
	(void)hold_ms;
	fprintf(stderr, "vfio-helper: built against headers without iommufd or VFIO's device cdev\n");
	exit(3);
}
#endif

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
	bool dma = false;
	long hold_ms = 0;
	char bdf[32];

	if (argc < 3)
		usage();
	const char *mode = argv[1];
	bool container = !strcmp(mode, "container");
	bool iommufd = !strcmp(mode, "iommufd");
	bool noiommu = !strcmp(mode, "noiommu");
	if (!container && !iommufd && !noiommu)
		usage();
	normalize_bdf(argv[2], bdf, sizeof(bdf));

	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--dma") && !noiommu) {
			dma = true;
		} else if (!strcmp(argv[i], "--hold-ms") && i + 1 < argc) {
			char *end;

			errno = 0;
			hold_ms = strtol(argv[++i], &end, 10);
			/* Cap at one day so hold_ms * 1e6 cannot overflow. */
			if (errno || *end || end == argv[i] || hold_ms < 0 || hold_ms > 86400000L)
				usage();
		} else if (!strcmp(argv[i], "--until-request")) {
			until_request = true;
		} else {
			usage();
		}
	}
	if (until_request && hold_ms <= 0)
		usage();

	milestone("mode=%s", mode);
	milestone("bdf=%s", bdf);
	if (iommufd)
		run_iommufd(bdf, dma, hold_ms);
	else
		run_container(bdf, noiommu, dma, hold_ms);
	milestone("ok");
	return 0;
}
