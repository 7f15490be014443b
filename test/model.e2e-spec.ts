import fc from 'fast-check';
import {
  Advance,
  CancelAtPeriodEnd,
  CancelNow,
  ChangePlan,
  CreateSub,
  Decline,
  DropNextAnswer,
  ExecuteReservations,
  LoseWebhooks,
  Pause,
  Reactivate,
  Recover,
  Refund,
  ReplayHeld,
  RestoreWebhooks,
  Resume,
  Run,
  Settle,
  initialSubs,
  stepArbitrary,
  SwapKey,
  ToMonthEnd,
  TwoRuns,
} from './model/commands';
import { DAY, HOUR, MINUTE, Model, WEEK, World } from './model/world';

/**
 * The model-based test (issue 9): random sequences of subscriptions (both charge modes, trials, month-end anchors and
 * future starts), clock moves, runs (two at once, on one or two instances), admin and customer actions, refunds and
 * the fake Bootpay's faults, on the real PostgreSQL and the fake over HTTP, through the public API only. After every
 * step and after every settling step the invariants of test/model/invariants.ts are checked against a reference model
 * that keeps only what the service acknowledged.
 *
 * MODEL_RUNS (default 4) sequences of at most MODEL_STEPS (default 30) steps, each on a fresh app and database;
 * MODEL_RUNS=2000 is the long setting. MODEL_SEED replays a run (fast-check prints the seed and path of a failure).
 * A failure prints the shrunk sequence as constructor calls: paste it below as a named regression test.
 */

const RUNS = Number(process.env.MODEL_RUNS ?? 4);
const STEPS = Number(process.env.MODEL_STEPS ?? 30);
const SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);
const PATH = process.env.MODEL_PATH;

/** One sequence on a fresh service: every step, then a final settle and its checks. */
async function runSequence(steps: Iterable<fc.AsyncCommand<Model, World>>) {
  const world = await World.start();
  const model = World.initialModel();
  try {
    await fc.asyncModelRun(() => ({ model, real: world }), steps);
    await new Settle().run(model, world);
    if (process.env.MODEL_VERBOSE) {
      const l = world.t.fake.ledger();
      console.log(`${world.trace.length} steps, ${model.subs.length} subscriptions, ${l.charges.length} charges, ${l.failed_charges.length} declines, ${l.cancels.length} refunds, ${l.reservations.length} reservations\n  ${world.trace.join('\n  ')}`);
    }
  } catch (e) {
    (e as Error).message += `\nsteps run (clock, step):\n  ${world.trace.join('\n  ')}`;
    throw e;
  } finally {
    await world.close();
  }
}

describe('Model-based test: every interleaving of runs, actions and Bootpay faults keeps the money right', () => {
  it(
    `holds the invariants over ${RUNS} random sequences of up to ${STEPS} steps`,
    async () => {
      await fc.assert(
        fc.asyncProperty(initialSubs, fc.commands([stepArbitrary], { maxCommands: STEPS, size: 'max' }), async (first, cmds) => runSequence([...first, ...cmds])),
        { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), ...(PATH ? { path: PATH } : {}), endOnFailure: process.env.MODEL_SHRINK === '0' },
      );
    },
    Math.max(120_000, RUNS * 60_000),
  );

  // ------------------------------------------------------------------ regressions: sequences the model found failing

  it('regression: a plain month of both charge modes settles', async () => {
    await runSequence([new CreateSub(0, 0, 0, 'now'), new CreateSub(1, 0, 2, 'now'), new Advance(31 * DAY), new Run(), new ExecuteReservations(), new Settle()]);
  }, 60_000);
});

// Keep every command class referenced, so regression sequences can use any of them.
void [Advance, CancelAtPeriodEnd, CancelNow, ChangePlan, CreateSub, Decline, DropNextAnswer, ExecuteReservations, LoseWebhooks, Pause, Reactivate, Recover, Refund, ReplayHeld, RestoreWebhooks, Resume, Run, SwapKey, ToMonthEnd, TwoRuns, HOUR, MINUTE, WEEK];
