// Pure reading of kernel build output.

/** The first lines that say why a build failed, for the one-line cause and the excerpt. */
export function firstBuildErrors(log: string, max = 8): string[] {
  const lines = log.split('\n');
  const index = lines.findIndex((line) => /\berror:|undefined reference|\*\*\* \[|Error \d+/.test(line));
  if (index < 0) return lines.filter((line) => line.trim()).slice(-max);
  return lines.slice(index, index + max);
}

/** The file Kbuild is working on, from a quiet-mode line such as `  CC      drivers/iommu/iommu.o`. */
export function buildProgressTarget(line: string): string | undefined {
  const match = /^\s{2}([A-Z][A-Z0-9_]*)\s+(\S+)/.exec(line);
  return match ? `${match[1]} ${match[2]}` : undefined;
}
