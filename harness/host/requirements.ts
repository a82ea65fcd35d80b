// Every program and file the harness, the kernel build and the tests use from
// the host, with the Debian 12 package that provides it. The package list
// (`iommu-harness packages`, read by scripts/install-deps.sh), `doctor` and the
// preflight before a run all come from this one table, so a tool cannot be
// used without being installed on a fresh machine. A unit test finds every
// program the source spawns and fails when it is missing here.

import { qbootFirmware } from '../machine/qemu-args.ts';

/** What needs a requirement: a run checks `harness` and `kernel-build` before anything starts. */
export type Purpose =
  /** QEMU, the guest image, symbolizing, git: every run. */
  | 'harness'
  /** Programs `make bzImage headers_install` runs, and the headers its host tools include. */
  | 'kernel-build'
  /** Debian's packaged kernel sources (without --src, or --src debian:RELEASE): unpacking them. */
  | 'debian-source'
  /** Debian's 6.12 source, the default kernel. */
  | 'debian-6.12'
  /** Debian 12's own 6.1 LTS source (--src debian:6.1). */
  | 'debian-6.1'
  /** Debian unstable's source (--src debian:7.2, debian:unstable): downloaded with a private apt state, never installed. */
  | 'debian-download'
  /** The arm64 machines (--iommu smmuv3): cross-building the kernel and guest helpers, booting virt, and the arm64 guest's userland (downloaded .debs, never installed). */
  | 'arm64'
  /** The kernel's own test programs (selftest-iommufd, selftest-vfio): built statically from the tree under test. */
  | 'selftests'
  /** Only the project's own test suite. */
  | 'tests'
  /** Only .ci/run, which builds a fresh Debian root. */
  | 'ci';

export interface Requirement {
  /** A program looked up on PATH, or an absolute path to a file that must exist. */
  name: string;
  package: string;
  purpose: Purpose;
  /** Why the harness or the build needs it; shown when it is missing. */
  why: string;
  /** The harness works without it, with less (ccache: slower builds). */
  optional?: boolean;
}

export const requirements: readonly Requirement[] = [
  // The harness itself.
  { name: 'qemu-system-x86_64', package: 'qemu-system-x86', purpose: 'harness', why: 'boots the guest (q35, intel-iommu, virtio-iommu)' },
  { name: qbootFirmware, package: 'qemu-system-data', purpose: 'harness', why: 'the firmware the guest boots with: it loads the kernel and nothing else' },
  // The image copies these exact files, so they are checked by path.
  { name: '/bin/busybox', package: 'busybox-static', purpose: 'harness', why: "the guest's userspace (a static binary)" },
  { name: '/usr/sbin/dropbear', package: 'dropbear-bin', purpose: 'harness', why: "the guest's SSH server" },
  { name: 'dropbearkey', package: 'dropbear-bin', purpose: 'harness', why: "makes the guest's host key once per installation" },
  { name: 'ldd', package: 'libc-bin', purpose: 'harness', why: "lists dropbear's libraries for the guest image" },
  { name: 'gcc', package: 'gcc', purpose: 'harness', why: 'compiles the guest helpers (and the kernel)' },
  { name: '/usr/lib/x86_64-linux-gnu/libc.a', package: 'libc6-dev', purpose: 'harness', why: 'the guest helpers are linked statically' },
  { name: 'git', package: 'git', purpose: 'harness', why: 'worktrees, patches (git am / git apply), commits' },
  { name: 'nm', package: 'binutils', purpose: 'harness', why: 'symbolizes report frames' },
  { name: 'addr2line', package: 'binutils', purpose: 'harness', why: 'symbolizes report frames to file:line' },
  { name: 'readelf', package: 'binutils', purpose: 'harness', why: 'checks vmlinux for line tables' },
  { name: 'setpriv', package: 'util-linux', purpose: 'harness', why: 'QEMU is started with a parent-death signal, so it dies with the harness, kill -9 included' },
  { name: 'tar', package: 'tar', purpose: 'debian-source', why: "unpacks Debian's kernel source" },
  { name: 'xz', package: 'xz-utils', purpose: 'debian-source', why: "Debian's kernel source is a .tar.xz" },
  { name: 'dpkg-query', package: 'dpkg', purpose: 'debian-source', why: "reads the installed linux-source package's exact version for the output and the JSON" },
  { name: '/usr/src/linux-source-6.12.tar.xz', package: 'linux-source-6.12', purpose: 'debian-6.12', why: 'the default kernel source (without --src, or --src debian:6.12)' },
  { name: 'apt-get', package: 'apt', purpose: 'debian-download', why: "downloads Debian unstable's linux-source package (--src debian:7.2) with the harness's own apt state" },
  { name: 'apt-cache', package: 'apt', purpose: 'debian-download', why: "finds which linux-source-X.Y Debian unstable carries, and its exact version" },
  { name: 'dpkg-deb', package: 'dpkg', purpose: 'debian-download', why: 'extracts the downloaded .deb without installing it' },
  { name: '/usr/share/keyrings/debian-archive-keyring.gpg', package: 'debian-archive-keyring', purpose: 'debian-download', why: "verifies Debian unstable's Release file" },
  { name: '/usr/src/linux-source-6.1.tar.xz', package: 'linux-source-6.1', purpose: 'debian-6.1', why: "Debian 12's own 6.1 LTS kernel source (--src debian:6.1)" },
  // What the kernel's own Makefiles run for tinyconfig + kconfigs/ on x86_64.
  { name: 'make', package: 'make', purpose: 'kernel-build', why: 'Kbuild' },
  { name: 'ld', package: 'binutils', purpose: 'kernel-build', why: 'links vmlinux' },
  { name: 'as', package: 'binutils', purpose: 'kernel-build', why: 'assembles the kernel' },
  { name: 'objcopy', package: 'binutils', purpose: 'kernel-build', why: 'makes bzImage' },
  { name: 'flex', package: 'flex', purpose: 'kernel-build', why: 'Kconfig and dtc lexers' },
  { name: 'bison', package: 'bison', purpose: 'kernel-build', why: 'Kconfig parser' },
  { name: 'bc', package: 'bc', purpose: 'kernel-build', why: 'kernel/time/timeconst.bc' },
  { name: 'perl', package: 'perl', purpose: 'kernel-build', why: 'headers_install and other build scripts' },
  { name: 'rsync', package: 'rsync', purpose: 'kernel-build', why: '`make headers_install` copies the uapi headers with rsync (6.12)' },
  { name: 'python3', package: 'python3', purpose: 'kernel-build', why: 'build scripts' },
  { name: 'pkg-config', package: 'pkg-config', purpose: 'kernel-build', why: 'objtool finds libelf' },
  { name: '/usr/include/libelf.h', package: 'libelf-dev', purpose: 'kernel-build', why: 'objtool (CONFIG_OBJTOOL, ORC unwinder)' },
  { name: '/usr/include/openssl/ssl.h', package: 'libssl-dev', purpose: 'kernel-build', why: 'the host tools in certs/ and scripts/' },
  { name: 'lz4', package: 'lz4', purpose: 'kernel-build', why: 'compresses bzImage (CONFIG_KERNEL_LZ4: the fastest to decompress under TCG)' },
  { name: 'cpio', package: 'cpio', purpose: 'kernel-build', why: 'initramfs and kheaders scripts' },
  { name: 'pahole', package: 'dwarves', purpose: 'kernel-build', why: 'BTF, for fragments that turn on CONFIG_DEBUG_INFO_BTF', optional: true },
  { name: 'ccache', package: 'ccache', purpose: 'kernel-build', why: 'rebuilds across worktrees and profiles reuse objects', optional: true },
  { name: 'depmod', package: 'kmod', purpose: 'kernel-build', why: 'user fragments that turn modules on', optional: true },
  // The arm64 machines (smmuv3 on virt): a kernel and static helpers cross-built
  // with Debian 12's toolchain, and Debian's arm64 busybox-static, dropbear-bin
  // and their libraries downloaded as .debs with the harness's own apt state.
  { name: 'qemu-system-aarch64', package: 'qemu-system-arm', purpose: 'arm64', why: 'boots the arm64 guest (virt with iommu=smmuv3, GICv3)' },
  { name: 'aarch64-linux-gnu-gcc', package: 'gcc-aarch64-linux-gnu', purpose: 'arm64', why: 'cross-compiles the arm64 kernel and the guest helpers' },
  { name: 'aarch64-linux-gnu-ld', package: 'binutils-aarch64-linux-gnu', purpose: 'arm64', why: 'links the arm64 vmlinux' },
  { name: 'aarch64-linux-gnu-objcopy', package: 'binutils-aarch64-linux-gnu', purpose: 'arm64', why: 'makes the arm64 Image' },
  { name: 'aarch64-linux-gnu-nm', package: 'binutils-aarch64-linux-gnu', purpose: 'arm64', why: 'symbolizes arm64 report frames' },
  { name: 'aarch64-linux-gnu-addr2line', package: 'binutils-aarch64-linux-gnu', purpose: 'arm64', why: 'symbolizes arm64 report frames to file:line' },
  { name: 'aarch64-linux-gnu-readelf', package: 'binutils-aarch64-linux-gnu', purpose: 'arm64', why: "checks the arm64 vmlinux for line tables and reads dropbear's NEEDED libraries" },
  { name: '/usr/aarch64-linux-gnu/lib/libc.a', package: 'libc6-dev-arm64-cross', purpose: 'arm64', why: 'the arm64 guest helpers are linked statically' },
  { name: 'apt-get', package: 'apt', purpose: 'arm64', why: "downloads the arm64 guest's busybox-static and dropbear-bin .debs with the harness's own apt state" },
  { name: 'apt-cache', package: 'apt', purpose: 'arm64', why: "lists dropbear-bin's arm64 dependencies (its libraries)" },
  { name: 'dpkg-deb', package: 'dpkg', purpose: 'arm64', why: 'unpacks the arm64 .debs into the cache without installing them' },
  { name: '/usr/share/keyrings/debian-archive-keyring.gpg', package: 'debian-archive-keyring', purpose: 'arm64', why: "verifies the Release file the arm64 packages are listed in" },
  // The kernel's own selftests, built from the tree under test and linked statically (harness/selftest/build.ts).
  { name: '/usr/lib/x86_64-linux-gnu/libcap.a', package: 'libcap-dev', purpose: 'selftests', why: "the tree's iommufd and vfio selftests link libcap (statically, for the guest)" },
  { name: 'make', package: 'make', purpose: 'selftests', why: "runs the selftests' own Makefiles (tools/testing/selftests/DIR)" },
  // The project's tests.
  { name: 'pgrep', package: 'procps', purpose: 'tests', why: 'the tests check that no QEMU is left' },
  { name: 'chromium', package: 'chromium', purpose: 'tests', why: 'the nightly HTML report is read back in headless Chromium' },
  { name: 'unshare', package: 'util-linux', purpose: 'tests', why: 'a read-only cache is made in a private mount namespace' },
  // CI's fresh Debian root.
  { name: 'debootstrap', package: 'debootstrap', purpose: 'ci', why: '.ci/run builds a fresh Debian 12 root every time' },
];

/** The Debian packages for the given purposes, each once, in table order. */
export function packagesFor(purposes: readonly Purpose[], options: { optional?: boolean } = {}): string[] {
  const wanted = requirements.filter((requirement) => purposes.includes(requirement.purpose) && (options.optional !== false || !requirement.optional));
  return [...new Set(wanted.map((requirement) => requirement.package))];
}

/**
 * What a run needs before it starts: the harness and the kernel build, plus
 * the Debian source it builds, if any, and the arm64 toolchain and QEMU when
 * one of its machines is arm64.
 */
export function runPurposes(options: { debianSource: string | undefined; arm64?: boolean; selftests?: boolean }): Purpose[] {
  const { debianSource } = options;
  const arm64: Purpose[] = [...(options.arm64 ? (['arm64'] as const) : []), ...(options.selftests ? (['selftests'] as const) : [])];
  if (!debianSource) return ['harness', 'kernel-build', ...arm64];
  const installed = debianSource === '6.12' || debianSource === '6.1';
  return ['harness', 'kernel-build', 'debian-source', installed ? `debian-${debianSource}` : 'debian-download', ...arm64];
}

/** Everything a user installs with `iommu-harness setup` / scripts/install-deps.sh: both Debian kernels included. */
export const installPurposes: readonly Purpose[] = ['harness', 'kernel-build', 'debian-source', 'debian-6.12', 'debian-6.1', 'debian-download', 'arm64', 'selftests', 'tests'];
