import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HarnessError } from '../../harness/errors.ts';
import { QmpClient, QmpCommandError, deviceAdd, deviceDel, type QmpEvent } from '../../harness/machine/qmp.ts';

type Msg = Record<string, unknown>;

const GREETING = {
  QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: 'Debian 1:7.2+dfsg-7' }, capabilities: ['oob'] },
};

/** One client connection as the fake QEMU sees it. */
class FakeConnection {
  /** Every command received, negotiation included, in order. */
  readonly received: Msg[] = [];
  negotiated = false;
  private queue: Msg[] = [];
  private wakers: Array<(m: Msg) => void> = [];
  private buffer = '';
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket, private readonly options: FakeOptions) {
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i).trim();
        this.buffer = this.buffer.slice(i + 1);
        if (line) this.onCommand(JSON.parse(line) as Msg);
      }
    });
    if (options.greet !== false) this.send(GREETING);
  }

  private onCommand(cmd: Msg): void {
    this.received.push(cmd);
    // Like QEMU: in negotiation mode only qmp_capabilities is accepted.
    if (!this.negotiated) {
      if (cmd.execute === 'qmp_capabilities') {
        if (this.options.manualNegotiation) {
          this.deliver(cmd);
          return;
        }
        this.negotiated = true;
        this.send({ return: {}, id: cmd.id });
      } else {
        this.send({
          error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
          id: cmd.id,
        });
      }
      return;
    }
    this.deliver(cmd);
  }

  private deliver(cmd: Msg): void {
    const waker = this.wakers.shift();
    if (waker) waker(cmd);
    else this.queue.push(cmd);
  }

  /** The next command after negotiation. */
  next(): Promise<Msg> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  write(raw: string): void {
    this.socket.write(raw);
  }

  send(obj: unknown): void {
    this.write(`${JSON.stringify(obj)}\r\n`);
  }

  reply(cmd: Msg, ret: unknown = {}): void {
    this.send({ return: ret, id: cmd.id });
  }

  event(name: string, data?: Msg): void {
    this.send(eventObject(name, data));
  }
}

function eventObject(name: string, data?: Msg): Msg {
  return { timestamp: { seconds: 1700000000, microseconds: 123456 }, event: name, ...(data ? { data } : {}) };
}

interface FakeOptions {
  greet?: boolean;
  /** Hand qmp_capabilities to the test instead of answering it. */
  manualNegotiation?: boolean;
  /** Create the socket later, with listen(). */
  deferListen?: boolean;
}

interface FakeQmp {
  socketPath: string;
  listen(): Promise<void>;
  connection(): Promise<FakeConnection>;
}

async function fakeQmp(t: ExecutionContext, options: FakeOptions = {}): Promise<FakeQmp> {
  // A client that never sends or answers would otherwise leave the test waiting forever.
  t.timeout(5000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qmp-test-'));
  const socketPath = path.join(dir, 'qmp.sock');
  const connections: FakeConnection[] = [];
  const wakers: Array<(c: FakeConnection) => void> = [];
  const server = net.createServer((socket) => {
    const conn = new FakeConnection(socket, options);
    const waker = wakers.shift();
    if (waker) waker(conn);
    else connections.push(conn);
  });
  t.teardown(async () => {
    await new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      // Connections the client left open would keep close() waiting.
      for (const c of connections) c.socket.destroy();
    });
    rmSync(dir, { recursive: true, force: true });
  });
  const listen = () => new Promise<void>((resolve) => server.listen(socketPath, resolve));
  if (!options.deferListen) await listen();
  return {
    socketPath,
    listen,
    connection: () => {
      const c = connections.shift();
      if (c) return Promise.resolve(c);
      return new Promise((resolve) => wakers.push(resolve));
    },
  };
}

/** Connects a client and tracks it so every test closes it. */
async function connected(t: ExecutionContext, options: FakeOptions = {}) {
  const fake = await fakeQmp(t, options);
  const [client, conn] = await Promise.all([QmpClient.connect(fake.socketPath, { timeoutMs: 2000 }), fake.connection()]);
  t.teardown(() => client.close());
  return { client, conn, fake };
}

function timerCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

function isQmpError(t: ExecutionContext, err: unknown): asserts err is HarnessError {
  t.true(err instanceof HarnessError, `expected a HarnessError, got ${String(err)}`);
  t.is((err as HarnessError).kind, 'qmp');
}

// Serial tests run first and alone, so the process-wide timer count is this test's own.

test.serial('timeouts clear their timers and remove the waiter', async (t) => {
  const { client, conn } = await connected(t);
  const before = timerCount();

  const waitErr = await t.throwsAsync(client.waitForEvent('DEVICE_DELETED', undefined, { timeoutMs: 50 }));
  isQmpError(t, waitErr);
  // The message names what was awaited and for how long.
  t.regex(waitErr.message, /DEVICE_DELETED/);
  t.regex(waitErr.message, /50 ms/);

  const cmdErr = await t.throwsAsync(client.execute('query-status', undefined, { timeoutMs: 50 }));
  isQmpError(t, cmdErr);
  t.regex(cmdErr.message, /query-status/);
  t.regex(cmdErr.message, /50 ms/);
  t.is(timerCount(), before);

  // The late reply to the timed-out command is dropped, not handed to the next command.
  const late = await conn.next();
  const next = client.execute<{ status: string }>('query-status');
  const cmd = await conn.next();
  conn.reply(late, { status: 'stale' });
  conn.reply(cmd, { status: 'running' });
  t.deepEqual(await next, { status: 'running' });

  // An event arriving after its waiter timed out is still logged for later waits.
  conn.event('DEVICE_DELETED', { device: 'd1' });
  await client.waitForEvent('DEVICE_DELETED');
  t.is(timerCount(), before);
});

test.serial('close while pending rejects everything and clears timers; close is idempotent', async (t) => {
  const { client, conn } = await connected(t);
  const before = timerCount();
  const cmd = client.execute('device_del', { id: 'd1' });
  const ev = client.waitForEvent('DEVICE_DELETED', (e) => e.data.device === 'd1');
  await conn.next();

  client.close();
  client.close();

  const cmdErr = await t.throwsAsync(cmd);
  isQmpError(t, cmdErr);
  t.regex(cmdErr.message, /closed by the harness.*device_del/);
  const evErr = await t.throwsAsync(ev);
  isQmpError(t, evErr);
  t.regex(evErr.message, /DEVICE_DELETED/);
  t.is(timerCount(), before);
  t.true(client.closed);
  await conn.closed;

  const after = await t.throwsAsync(client.execute('query-status'));
  isQmpError(t, after);
  t.regex(after.message, /cannot send query-status/);
});

test('greeting, then qmp_capabilities before anything else', async (t) => {
  const fake = await fakeQmp(t, { manualNegotiation: true });
  let resolved = false;
  const connecting = QmpClient.connect(fake.socketPath, { timeoutMs: 2000 }).then((c) => {
    resolved = true;
    t.teardown(() => c.close());
    return c;
  });
  const conn = await fake.connection();
  const negotiation = await conn.next();
  t.is(negotiation.execute, 'qmp_capabilities');
  t.is(typeof negotiation.id, 'string');
  t.deepEqual(conn.received, [negotiation]);

  // QEMU refuses other commands until negotiation is answered, so connect must wait for it.
  await sleep(50);
  t.false(resolved);
  conn.negotiated = true;
  conn.reply(negotiation);
  const client = await connecting;
  t.is(client.greeting.QMP.version?.qemu?.major, 7);

  const status = client.execute('query-status');
  t.is((await conn.next()).execute, 'query-status');
  t.deepEqual(conn.received.map((m) => m.execute), ['qmp_capabilities', 'query-status']);
  client.close();
  await t.throwsAsync(status);
});

test('connect fails when the greeting is not a QMP greeting', async (t) => {
  const fake = await fakeQmp(t, { greet: false });
  const connecting = QmpClient.connect(fake.socketPath, { timeoutMs: 2000 });
  const conn = await fake.connection();
  conn.send({ return: {} });
  const err = await t.throwsAsync(connecting);
  isQmpError(t, err);
  t.regex(err.message, /greeting/);
});

test('connect times out when no greeting comes (another client holds the monitor)', async (t) => {
  const fake = await fakeQmp(t, { greet: false });
  const err = await t.throwsAsync(QmpClient.connect(fake.socketPath, { timeoutMs: 150 }));
  isQmpError(t, err);
  t.regex(err.message, /no QMP greeting/);
});

test('execute sends arguments with an id and resolves with return', async (t) => {
  const { client, conn } = await connected(t);
  const result = client.execute<{ running: boolean; status: string }>('query-status', { verbose: true });
  const cmd = await conn.next();
  t.is(cmd.execute, 'query-status');
  t.deepEqual(cmd.arguments, { verbose: true });
  t.truthy(cmd.id);
  conn.reply(cmd, { running: true, status: 'running' });
  t.deepEqual(await result, { running: true, status: 'running' });
});

test('an error reply rejects with the QMP class and desc', async (t) => {
  const { client, conn } = await connected(t);
  const result = client.execute('device_del', { id: 'nope' });
  const cmd = await conn.next();
  conn.send({ error: { class: 'DeviceNotFound', desc: "Device 'nope' not found" }, id: cmd.id });
  const err = await t.throwsAsync(result);
  isQmpError(t, err);
  t.true(err instanceof QmpCommandError);
  const qerr = err as QmpCommandError;
  t.is(qerr.errorClass, 'DeviceNotFound');
  t.is(qerr.desc, "Device 'nope' not found");
  t.regex(qerr.message, /device_del.*DeviceNotFound.*Device 'nope' not found/);
  // The client stays usable after a failed command.
  const again = client.execute('query-status');
  conn.reply(await conn.next(), { status: 'running' });
  t.deepEqual(await again, { status: 'running' });
});

test('a reply split across chunks, even inside a UTF-8 character, is reassembled', async (t) => {
  const { client, conn } = await connected(t);
  const result = client.hmp('info version');
  const cmd = await conn.next();
  t.deepEqual(cmd, { execute: 'human-monitor-command', arguments: { 'command-line': 'info version' }, id: cmd.id });
  const bytes = Buffer.from(`${JSON.stringify({ return: '7.2.0 (µ test)\r\n', id: cmd.id })}\r\n`);
  const cut = bytes.indexOf(Buffer.from('µ')) + 1; // between the two bytes of µ
  for (const piece of [bytes.subarray(0, 5), bytes.subarray(5, cut), bytes.subarray(cut, bytes.length - 1), bytes.subarray(bytes.length - 1)]) {
    conn.socket.write(piece);
    await sleep(15);
  }
  t.is(await result, '7.2.0 (µ test)\r\n');
});

test('several objects in one chunk: replies matched by id, not by order', async (t) => {
  const { client, conn } = await connected(t);
  const a = client.execute('query-a');
  const b = client.execute('query-b');
  const ca = await conn.next();
  const cb = await conn.next();
  t.not(ca.id, cb.id);
  conn.write(
    [
      JSON.stringify({ return: 'B', id: cb.id }),
      JSON.stringify(eventObject('RESET', { guest: true, reason: 'guest-reset' })),
      JSON.stringify({ return: 'A', id: ca.id }),
      '',
    ].join('\r\n'),
  );
  t.is(await a, 'A');
  t.is(await b, 'B');
  t.deepEqual(client.events.map((e) => e.event), ['RESET']);
});

test('events interleaved with replies are logged in order and do not disturb replies', async (t) => {
  const { client, conn } = await connected(t);
  const result = client.execute('device_add', { driver: 'edu', id: 'd1', bus: 'rp1' });
  const cmd = await conn.next();
  conn.event('ACPI_DEVICE_OST', { info: { device: 'd1', source: 1, status: 0 } });
  conn.write(`${JSON.stringify({ return: {}, id: cmd.id })}\r\n${JSON.stringify(eventObject('STOP'))}\r`);
  await sleep(15);
  conn.write('\n');
  t.deepEqual(await result, {});
  await client.waitForEvent('STOP', undefined, { timeoutMs: 1000 });
  t.deepEqual(client.events.map((e) => e.event), ['ACPI_DEVICE_OST', 'STOP']);
  const [ost, stop] = client.events as QmpEvent[];
  t.deepEqual(ost?.data, { info: { device: 'd1', source: 1, status: 0 } });
  t.deepEqual(ost?.timestamp, { seconds: 1700000000, microseconds: 123456 });
  // QEMU omits `data` for payload-less events; callers may still read e.data.x.
  t.deepEqual(stop?.data, {});
});

test('waitForEvent sees an event that arrived before the call, and filters with match', async (t) => {
  const { client, conn } = await connected(t);
  const result = client.execute('device_del', { id: 'd2' });
  const cmd = await conn.next();
  // The event precedes the reply on the stream, so it is received before execute resolves.
  conn.event('DEVICE_DELETED', { path: '/machine/peripheral/d2/virtio-backend' });
  conn.event('DEVICE_DELETED', { device: 'd2', path: '/machine/peripheral/d2' });
  conn.reply(cmd);
  await result;

  const e = await client.waitForEvent('DEVICE_DELETED', (ev) => ev.data.device === 'd2', { timeoutMs: 100 });
  t.is(e.data.path, '/machine/peripheral/d2');
  // `since` skips events received before a given point.
  await t.throwsAsync(client.waitForEvent('DEVICE_DELETED', undefined, { timeoutMs: 50, since: client.events.length }));

  // And a later event resolves a waiter registered before it.
  const later = client.waitForEvent('DEVICE_DELETED', (ev) => ev.data.device === 'd3', { timeoutMs: 1000 });
  conn.event('DEVICE_DELETED', { device: 'd4' });
  conn.event('DEVICE_DELETED', { device: 'd3' });
  t.is((await later).data.device, 'd3');
});

test('the socket closing mid-command rejects pending calls with a clear message', async (t) => {
  const { client, conn } = await connected(t);
  const cmd = client.execute('device_del', { id: 'd1' });
  const ev = client.waitForEvent('DEVICE_DELETED', undefined, { timeoutMs: 5000 });
  await conn.next();
  // Half a reply, then QEMU dies.
  conn.write('{"return": {}, "i');
  await sleep(15);
  conn.socket.destroy();
  const err = await t.throwsAsync(cmd);
  isQmpError(t, err);
  t.regex(err.message, /socket .* closed.*device_del/);
  const evErr = await t.throwsAsync(ev);
  isQmpError(t, evErr);
  t.regex(evErr.message, /closed.*DEVICE_DELETED/);
  t.true(client.closed);
  await t.throwsAsync(client.execute('query-status'), { message: /closed/ });
});

test('malformed JSON rejects pending calls naming the line', async (t) => {
  const { client, conn } = await connected(t);
  const cmd = client.execute('query-status');
  await conn.next();
  conn.write('{"return": oops}\r\n');
  const err = await t.throwsAsync(cmd);
  isQmpError(t, err);
  t.regex(err.message, /not JSON/);
  t.true(err.message.includes('{"return": oops}'));
  t.true(client.closed);
});

test('connect retries until QEMU creates the socket', async (t) => {
  const fake = await fakeQmp(t, { deferListen: true });
  const connecting = QmpClient.connect(fake.socketPath, { timeoutMs: 3000 });
  await sleep(300);
  await fake.listen();
  const client = await connecting;
  t.teardown(() => client.close());
  t.is(client.greeting.QMP.version?.qemu?.minor, 2);
});

test('connect gives up after its timeout when the socket never appears', async (t) => {
  const fake = await fakeQmp(t, { deferListen: true });
  const start = Date.now();
  const err = await t.throwsAsync(QmpClient.connect(fake.socketPath, { timeoutMs: 200 }));
  isQmpError(t, err);
  t.true(err.message.includes(fake.socketPath));
  t.regex(err.message, /ENOENT/);
  t.true(Date.now() - start >= 190);
});

test('deviceAdd sends the properties flat', async (t) => {
  const { client, conn } = await connected(t);
  const added = deviceAdd(client, { driver: 'edu', id: 'd1', bus: 'rp1', addr: '0x0' });
  const cmd = await conn.next();
  t.is(cmd.execute, 'device_add');
  t.deepEqual(cmd.arguments, { driver: 'edu', id: 'd1', bus: 'rp1', addr: '0x0' });
  conn.reply(cmd);
  await added;
});

test('deviceDel waits for DEVICE_DELETED, even one that beats the reply', async (t) => {
  const { client, conn } = await connected(t);
  const deleting = deviceDel(client, 'd1', { timeoutMs: 1000 });
  const cmd = await conn.next();
  t.deepEqual(cmd.arguments, { id: 'd1' });
  conn.event('DEVICE_DELETED', { device: 'other', path: '/machine/peripheral/other' });
  conn.event('DEVICE_DELETED', { device: 'd1', path: '/machine/peripheral/d1' });
  conn.reply(cmd);
  t.is((await deleting).data.device, 'd1');
});

test('deviceDel ignores an earlier unplug of the same id and never retries', async (t) => {
  const { client, conn } = await connected(t);
  // A previous hotplug cycle of a device with the same id.
  const first = deviceDel(client, 'd1', { timeoutMs: 1000 });
  const c1 = await conn.next();
  conn.reply(c1);
  conn.event('DEVICE_DELETED', { device: 'd1' });
  await first;

  const second = deviceDel(client, 'd1', { timeoutMs: 150 });
  conn.reply(await conn.next());
  const err = await t.throwsAsync(second);
  isQmpError(t, err);
  t.regex(err.message, /device_del d1.*150 ms.*DEVICE_DELETED/);
  await sleep(50);
  t.is(conn.received.filter((m) => m.execute === 'device_del').length, 2);
});
