// The architectures the harness builds kernels and guests for, one row each:
// how the kernel is built (make's ARCH, the cross toolchain, the image target,
// the fragments), which QEMU runs it, its console, and where the guest's
// userland comes from. A machine row (machines.ts) names its architecture;
// every machine of one architecture boots the same kernel and guest image.
// Pure data, so tests read the rows without a toolchain.

export type Arch = 'x86_64' | 'arm64';

/** Where the guest's busybox, dropbear and their libraries come from. */
export type Userland =
  /** The host's own installed busybox-static and dropbear-bin, with the libraries `ldd` lists. */
  | { kind: 'host' }
  /**
   * Debian 12's packages for another architecture, downloaded as .debs into the
   * cache with the harness's own apt state (the host's dpkg architectures are
   * never changed) and unpacked there; dropbear's libraries are what its ELF
   * NEEDED entries name, found in the unpacked packages.
   */
  | { kind: 'debian'; debianArch: string; multiarch: string; loader: string };

export interface ArchKind {
  /** make's ARCH= (also the first part of the kernel's cache key). */
  kernelArch: string;
  /** make's CROSS_COMPILE= and the binutils prefix (nm, addr2line, readelf); empty for the host's own. */
  crossCompile: string;
  /** The make target that builds the bootable image, and where Kbuild leaves it. */
  imageTarget: string;
  imagePath: string;
  /** The standard fragments of kconfigs/, in the order they are applied. */
  fragments: readonly string[];
  qemuBinary: string;
  /** The serial console the kernel prints to (console=). */
  console: string;
  /** Kernel command-line words only this architecture has. */
  cmdline: readonly string[];
  /** The C compiler the static guest helpers are built with, and the file a static link needs. */
  guestCc: string;
  staticLibc: string;
  userland: Userland;
}

export const arches = {
  x86_64: {
    kernelArch: 'x86_64',
    crossCompile: '',
    imageTarget: 'bzImage',
    imagePath: 'arch/x86/boot/bzImage',
    fragments: ['base.config', 'intel-iommu.config', 'amd-iommu.config', 'virtio-iommu.config', 'vfio.config', 'debug.config'],
    qemuBinary: 'qemu-system-x86_64',
    console: 'ttyS0',
    // Under TCG on a loaded host the IO-APIC timer check can miss its ticks and
    // panic ("timer doesn't work through Interrupt-remapped IO-APIC"): a
    // machine problem that would read as a kernel finding. The emulated timer works.
    cmdline: ['no_timer_check'],
    guestCc: 'gcc',
    staticLibc: '/usr/lib/x86_64-linux-gnu/libc.a',
    userland: { kind: 'host' },
  },
  arm64: {
    kernelArch: 'arm64',
    // Debian 12's gcc-aarch64-linux-gnu and binutils-aarch64-linux-gnu.
    crossCompile: 'aarch64-linux-gnu-',
    // Uncompressed: QEMU loads it directly with the device tree it generates for virt.
    imageTarget: 'Image',
    imagePath: 'arch/arm64/boot/Image',
    // No intel, amd or virtio-iommu (ACPI VIOT) fragment: virt boots from a device tree with an SMMUv3.
    fragments: ['base.config', 'arm64.config', 'vfio.config', 'debug.config'],
    qemuBinary: 'qemu-system-aarch64',
    console: 'ttyAMA0',
    // Unknown words would go to /init as arguments: nothing x86's is given here.
    cmdline: [],
    guestCc: 'aarch64-linux-gnu-gcc',
    staticLibc: '/usr/aarch64-linux-gnu/lib/libc.a',
    userland: { kind: 'debian', debianArch: 'arm64', multiarch: 'aarch64-linux-gnu', loader: 'lib/ld-linux-aarch64.so.1' },
  },
} as const satisfies Record<Arch, ArchKind>;

export function archOf(arch: Arch): ArchKind {
  return arches[arch];
}

/** The architecture the harness itself runs on, as the table names it (KVM can run only this one). */
export function hostArch(nodeArch: string = process.arch): Arch | undefined {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'arm64' : undefined;
}

/**
 * The accelerator of a machine whose architecture is not the host's: TCG,
 * whatever was asked (KVM runs only the host's own architecture), with the
 * reason for the output; undefined for the host's own architecture, which the
 * KVM probe decides.
 */
export function foreignArchAccel(arch: Arch, host: Arch | undefined = hostArch()): { accel: 'tcg'; reason: string; automatic: false } | undefined {
  if (arch === host) return undefined;
  return { accel: 'tcg', reason: `an ${arch} guest on an ${host ?? process.arch} host: KVM cannot run it`, automatic: false };
}
