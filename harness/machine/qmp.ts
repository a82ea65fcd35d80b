// QMP client for the QEMU monitor socket (`-qmp unix:PATH,server=on,wait=off`).
//
// The wire protocol, as QEMU 7.2 speaks it: on connect the server sends a greeting
// `{"QMP": {...}}` and stays in capabilities-negotiation mode, where every command except
// `qmp_capabilities` fails and no event is delivered. After that, each reply and each event
// is one JSON object on its own CRLF-terminated line, and events can arrive between a
// command and its reply. Replies echo the request's `id`, which is how they are matched.

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HarnessError } from '../errors.ts';

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** The first object QEMU sends on a fresh connection. */
export interface QmpGreeting {
  QMP: {
    version?: { qemu?: { major: number; minor: number; micro: number }; package?: string };
    capabilities?: unknown[];
  };
}

/** A command QEMU answered with `{"error": {...}}`. */
export class QmpCommandError extends HarnessError {
  readonly command: string;
  /** The QMP error class: GenericError, CommandNotFound, DeviceNotFound... */
  readonly errorClass: string;
  readonly desc: string;

  constructor(command: string, errorClass: string, desc: string, excerpt: string[]) {
    super('qmp', `QMP command ${command} failed: ${errorClass}: ${desc}`, { excerpt });
    this.command = command;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
export const DEFAULT_EVENT_TIMEOUT_MS = 10_000;
export const DEFAULT_DEVICE_DEL_TIMEOUT_MS = 30_000;

const CONNECT_RETRY_MS = 50;
// QEMU creates the socket file a little after the process starts (ENOENT), and a stale
// file left by an earlier run refuses connections until the new QEMU binds it (ECONNREFUSED).
const RETRYABLE_CONNECT_ERRORS = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

interface PendingCommand {
  command: string;
  request: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface EventWaiter {
  name: string;
  /** The event and its condition, for error messages. */
  what: string;
  match: (e: QmpEvent) => boolean;
  resolve: (e: QmpEvent) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export interface WaitForEventOptions {
  timeoutMs?: number;
  /**
   * Index into `events` from which earlier events count. Defaults to 0 (every event since
   * connect). Pass `client.events.length` taken before sending a command to ignore stale
   * events from an earlier, identical operation.
   */
  since?: number;
  /** What the match looks for, for error messages (e.g. `data.device = "d1"`). */
  description?: string;
}

export class QmpClient {
  readonly socketPath: string;
  private readonly socket: net.Socket;
  private buffer = '';
  private nextId = 0;
  private readonly pending = new Map<string, PendingCommand>();
  private readonly waiters = new Set<EventWaiter>();
  private readonly eventLog: QmpEvent[] = [];
  private greetingValue: QmpGreeting | undefined;
  private greetingWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  /** Why the connection ended; set once, by close() or by the socket going away. */
  private closeReason: string | undefined;
  private socketError: Error | undefined;

  private constructor(socket: net.Socket, socketPath: string) {
    this.socket = socket;
    this.socketPath = socketPath;
    // Decoding in the stream keeps a multi-byte character split across chunks intact.
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => {
      this.socketError = err;
    });
    socket.on('close', () => {
      const why = this.socketError ? `: ${this.socketError.message}` : ' (QEMU exited or closed the monitor)';
      this.shutdown(`QMP socket ${this.socketPath} closed${why}`);
    });
  }

  /**
   * Connects to the unix socket (retrying until it exists/accepts, within timeoutMs, since
   * QEMU creates it after start), reads the greeting, negotiates capabilities.
   */
  static async connect(socketPath: string, options: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const socket = await connectWithRetry(socketPath, deadline, timeoutMs);
    const client = new QmpClient(socket, socketPath);
    try {
      await client.readGreeting(Math.max(1, deadline - Date.now()));
      // Until this succeeds QEMU refuses every other command and holds back events.
      await client.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** The greeting QEMU sent (version and capabilities). */
  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new HarnessError('qmp', 'QMP greeting not received yet');
    return this.greetingValue;
  }

  /** Every event received so far, in order. */
  get events(): readonly QmpEvent[] {
    return this.eventLog;
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /**
   * Sends a command, resolves with `return`, rejects with a QmpCommandError (a
   * HarnessError('qmp')) carrying the QMP error class and desc; rejects on timeout or when
   * the socket closes.
   */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.closeReason !== undefined) {
      return Promise.reject(new HarnessError('qmp', `cannot send ${command}: ${this.closeReason}`));
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const id = `harness-${++this.nextId}`;
    const message: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) message.arguments = args;
    const request = JSON.stringify(message);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A reply that still comes later finds no pending entry and is dropped.
        this.pending.delete(id);
        reject(new HarnessError('qmp', `QMP command ${command} got no reply within ${timeoutMs} ms`, {
          excerpt: [`-> ${request}`],
        }));
      }, timeoutMs);
      this.pending.set(id, { command, request, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(`${request}\r\n`);
    });
  }

  /**
   * Resolves with the first event named `name` for which `match` holds, including events
   * that arrived before this call (from `options.since`, default: since connect), so a
   * caller can send a command and then wait without a race. Rejects on timeout or close.
   */
  waitForEvent(
    name: string,
    match: (e: QmpEvent) => boolean = () => true,
    options: WaitForEventOptions = {},
  ): Promise<QmpEvent> {
    const what = `QMP event ${name}${options.description ? ` (${options.description})` : ''}`;
    try {
      for (let i = Math.max(0, options.since ?? 0); i < this.eventLog.length; i++) {
        const e = this.eventLog[i]!;
        if (e.event === name && match(e)) return Promise.resolve(e);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closeReason !== undefined) {
      return Promise.reject(new HarnessError('qmp', `${this.closeReason} before ${what} arrived`));
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_EVENT_TIMEOUT_MS;
    return new Promise<QmpEvent>((resolve, reject) => {
      const waiter: EventWaiter = {
        name,
        what,
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new HarnessError('qmp', `timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /** Convenience: human-monitor-command. HMP reports its errors as text in the result, not as QMP errors. */
  hmp(commandLine: string, options: { timeoutMs?: number } = {}): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, options);
  }

  /** Idempotent; pending commands and event waits reject. */
  close(): void {
    this.shutdown(`QMP connection to ${this.socketPath} closed by the harness`);
  }

  private readGreeting(timeoutMs: number): Promise<void> {
    if (this.greetingValue) return Promise.resolve();
    if (this.closeReason !== undefined) {
      return Promise.reject(new HarnessError('qmp', `${this.closeReason} before the QMP greeting`));
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined;
        // QEMU serves one QMP client at a time; a second one is accepted but never greeted.
        reject(new HarnessError('qmp', `no QMP greeting on ${this.socketPath} within ${timeoutMs} ms (is another client connected?)`));
      }, timeoutMs);
      this.greetingWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0 && this.closeReason === undefined) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim() !== '') this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (err) {
      // With one unparsable line the reply/id pairing can no longer be trusted: end the session.
      this.shutdown(`QMP sent a line that is not JSON (${(err as Error).message}): ${truncate(line)}`, [line]);
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.shutdown(`QMP sent a line that is not a JSON object: ${truncate(line)}`, [line]);
      return;
    }
    const obj = msg as Record<string, unknown>;

    if (!this.greetingValue) {
      if (!('QMP' in obj)) {
        this.shutdown(`expected the QMP greeting on ${this.socketPath}, got: ${truncate(line)}`, [line]);
        return;
      }
      this.greetingValue = obj as unknown as QmpGreeting;
      this.greetingWaiter?.resolve();
      this.greetingWaiter = undefined;
      return;
    }

    if (typeof obj.event === 'string') {
      this.onEvent(obj);
      return;
    }

    if ('return' in obj || 'error' in obj) {
      // Replies whose id we do not know belong to commands that already timed out.
      const pending = typeof obj.id === 'string' ? this.pending.get(obj.id) : undefined;
      if (!pending) return;
      this.pending.delete(obj.id as string);
      clearTimeout(pending.timer);
      if ('error' in obj) {
        const error = (obj.error ?? {}) as Record<string, unknown>;
        const errorClass = typeof error.class === 'string' ? error.class : 'UnknownError';
        const desc = typeof error.desc === 'string' ? error.desc : JSON.stringify(error);
        pending.reject(new QmpCommandError(pending.command, errorClass, desc, [`-> ${pending.request}`, `<- ${line}`]));
      } else {
        pending.resolve(obj.return);
      }
    }
  }

  private onEvent(obj: Record<string, unknown>): void {
    const data = obj.data;
    const ts = obj.timestamp as { seconds?: unknown; microseconds?: unknown } | undefined;
    const event: QmpEvent = {
      event: obj.event as string,
      // Events without a payload (STOP, RESUME...) carry no `data` member at all.
      data: typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {},
      timestamp: {
        seconds: typeof ts?.seconds === 'number' ? ts.seconds : 0,
        microseconds: typeof ts?.microseconds === 'number' ? ts.microseconds : 0,
      },
    };
    this.eventLog.push(event);
    for (const waiter of [...this.waiters]) {
      if (waiter.name !== event.event) continue;
      let matched: boolean;
      try {
        matched = waiter.match(event);
      } catch (err) {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (matched) {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        waiter.resolve(event);
      }
    }
  }

  /** Ends the session once: destroys the socket, clears every timer, rejects everything pending. */
  private shutdown(reason: string, excerpt: string[] = []): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.socket.destroy();
    this.greetingWaiter?.reject(new HarnessError('qmp', `${reason} before the QMP greeting`, { excerpt }));
    this.greetingWaiter = undefined;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new HarnessError('qmp', `${reason} while waiting for the reply to ${p.command}`, {
        excerpt: [`-> ${p.request}`, ...excerpt],
      }));
    }
    this.pending.clear();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new HarnessError('qmp', `${reason} before ${w.what} arrived`, { excerpt }));
    }
    this.waiters.clear();
  }
}

export interface DeviceProps {
  driver: string;
  id: string;
  bus?: string;
  [prop: string]: unknown;
}

/** Hotplugs a device: `device_add` with the device's properties as flat arguments. */
export async function deviceAdd(client: QmpClient, props: DeviceProps, options: { timeoutMs?: number } = {}): Promise<void> {
  await client.execute('device_add', { ...props }, options);
}

/**
 * Unplugs a device: sends `device_del` once, then waits for DEVICE_DELETED naming it.
 * The `return` only means the request was accepted; the guest releases the device later.
 */
export async function deviceDel(client: QmpClient, id: string, options: { timeoutMs?: number; whilePending?: () => Promise<void> } = {}): Promise<QmpEvent> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DEVICE_DEL_TIMEOUT_MS;
  // The event may arrive before the reply; an identical event from an earlier unplug of a
  // device with the same id must not count. So only events from here on are considered.
  const since = client.events.length;
  await client.execute('device_del', { id });
  // What the guest does while QEMU waits for it to let go (pciehp: power the slot off now).
  if (options.whilePending) await options.whilePending();
  try {
    return await client.waitForEvent('DEVICE_DELETED', (e) => e.data.device === id, {
      timeoutMs,
      since,
      description: `data.device = ${JSON.stringify(id)}`,
    });
  } catch (err) {
    // A second device_del while the first is pending is refused or re-triggers the guest's
    // unplug sequence, so the failure is reported instead of retried.
    if (err instanceof HarnessError) {
      throw new HarnessError('qmp', `device_del ${id}: ${err.message}; not retried`, { cause: err, excerpt: err.excerpt });
    }
    throw err;
  }
}

async function connectWithRetry(socketPath: string, deadline: number, timeoutMs: number): Promise<net.Socket> {
  for (;;) {
    let code: string | undefined;
    try {
      return await connectOnce(socketPath);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      code = e.code;
      if (!code || !RETRYABLE_CONNECT_ERRORS.has(code)) {
        throw new HarnessError('qmp', `cannot connect to QMP socket ${socketPath}: ${e.message}`, { cause: e });
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new HarnessError('qmp', `QMP socket ${socketPath} did not accept a connection within ${timeoutMs} ms (last error: ${code})`);
    }
    await sleep(Math.min(CONNECT_RETRY_MS, left));
  }
}

function connectOnce(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    const onError = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function truncate(line: string, max = 200): string {
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
