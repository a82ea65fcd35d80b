// Where a scenario's seconds go, for `npm run bench` and for anyone asking why
// a scenario is slow: guest round trips over SSH, QMP commands, and waits
// (polling a device in or out, the hung-task detector's window). Pure: the
// guest API feeds it times it measured.

export interface GuestCost {
  /** The scenario's wall time, cycles included. */
  seconds: number;
  /** Commands run in the guest over SSH, and the time spent waiting for their answers. */
  roundTrips: number;
  roundTripSeconds: number;
  /** QMP commands (query-pci, device_add, device_del up to DEVICE_DELETED). */
  qmpCalls: number;
  qmpSeconds: number;
  /** Sleeps between polls and the wait for blocked tasks: time the harness chose to wait. */
  waitSeconds: number;
}

export const noCost: GuestCost = { seconds: 0, roundTrips: 0, roundTripSeconds: 0, qmpCalls: 0, qmpSeconds: 0, waitSeconds: 0 };

const round = (seconds: number) => Math.round(seconds * 1000) / 1000;

export function addCosts(a: GuestCost, b: GuestCost): GuestCost {
  return {
    seconds: round(a.seconds + b.seconds),
    roundTrips: a.roundTrips + b.roundTrips,
    roundTripSeconds: round(a.roundTripSeconds + b.roundTripSeconds),
    qmpCalls: a.qmpCalls + b.qmpCalls,
    qmpSeconds: round(a.qmpSeconds + b.qmpSeconds),
    waitSeconds: round(a.waitSeconds + b.waitSeconds),
  };
}

/** Adds up what one Guest spent; `measure` times a round trip or a QMP command. */
export class CostMeter {
  private cost: GuestCost = { ...noCost };

  async measure<T>(kind: 'ssh' | 'qmp', work: Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.cost =
        kind === 'ssh'
          ? { ...this.cost, roundTrips: this.cost.roundTrips + 1, roundTripSeconds: this.cost.roundTripSeconds + seconds }
          : { ...this.cost, qmpCalls: this.cost.qmpCalls + 1, qmpSeconds: this.cost.qmpSeconds + seconds };
    }
  }

  async wait(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.cost = { ...this.cost, waitSeconds: this.cost.waitSeconds + ms / 1000 };
  }

  /** What was spent, with the wall time the caller measured around it. */
  total(seconds: number): GuestCost {
    return addCosts(noCost, { ...this.cost, seconds });
  }
}
