// Progress for people. On a terminal one status line is rewritten in place; in
// CI and pipes every message is a plain line, so logs stay greppable.
export interface Progress {
  /** A stage starts or reaches a milestone. */
  step(message: string): void;
  /** A transient detail (the file being compiled); shown only on a terminal. */
  detail(message: string): void;
  /** Something the user should read even in quiet mode. */
  warn(message: string): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): Progress {
  const live = Boolean(stream.isTTY) && !process.env.CI;
  let statusShown = false;
  const clearStatus = () => {
    if (statusShown) {
      stream.write('\r\x1b[2K');
      statusShown = false;
    }
  };
  return {
    step(message) {
      if (quiet) return;
      clearStatus();
      stream.write(`${timestamp()} ${message}\n`);
    },
    detail(message) {
      if (quiet || !live) return;
      const width = (stream.columns ?? 80) - 1;
      stream.write(`\r\x1b[2K${message.slice(0, width)}`);
      statusShown = true;
    },
    warn(message) {
      clearStatus();
      stream.write(`${timestamp()} warning: ${message}\n`);
    },
  };
}

export const silentProgress: Progress = { step() {}, detail() {}, warn() {} };

function timestamp(): string {
  return new Date().toISOString().slice(11, 19);
}
