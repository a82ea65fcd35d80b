// QEMU must not outlive the harness on any exit path: normal return, thrown
// error, Ctrl-C or SIGTERM. Every machine registers here; the signal handlers
// kill what is left and remove its private files before the process exits.
import { rmSync } from 'node:fs';

export interface Reapable {
  /** Synchronous and idempotent: kills the process and removes private files. */
  reap(): void;
}

const live = new Set<Reapable>();
let installed = false;

export function register(machine: Reapable): () => void {
  live.add(machine);
  return () => live.delete(machine);
}

export function reapAll(): void {
  for (const machine of live) machine.reap();
  live.clear();
}

/** Installs SIGINT/SIGTERM/exit handlers once; `onSignal` reports, then the process exits with 130/143. */
export function installReaper(onSignal: (signal: NodeJS.Signals) => void = () => {}): void {
  if (installed) return;
  installed = true;
  process.on('exit', reapAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      reapAll();
      onSignal(signal);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

export function removeQuietly(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
