import test from 'ava';
import { addCosts, CostMeter, noCost } from '../../harness/scenario/guest-cost.ts';

test('the meter counts round trips and QMP commands apart, and a failed one still costs its time', async (t) => {
  const meter = new CostMeter();
  await meter.measure('ssh', new Promise((resolve) => setTimeout(resolve, 20)));
  await meter.measure('ssh', Promise.resolve());
  await t.throwsAsync(meter.measure('qmp', Promise.reject(new Error('gone'))));
  await meter.wait(10);
  const cost = meter.total(1.5);
  t.is(cost.seconds, 1.5);
  t.is(cost.roundTrips, 2);
  t.true(cost.roundTripSeconds >= 0.015);
  t.is(cost.qmpCalls, 1);
  t.is(cost.waitSeconds, 0.01);
});

test('costs add up over cycles', (t) => {
  const one = { seconds: 1, roundTrips: 3, roundTripSeconds: 0.3, qmpCalls: 1, qmpSeconds: 0.05, waitSeconds: 0.2 };
  t.deepEqual(addCosts(addCosts(noCost, one), one), { seconds: 2, roundTrips: 6, roundTripSeconds: 0.6, qmpCalls: 2, qmpSeconds: 0.1, waitSeconds: 0.4 });
});
