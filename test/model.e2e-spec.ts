import fc from 'fast-check';
import { appendFileSync } from 'node:fs';
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
 * that keeps only what the service acknowledged. Each sequence runs on a fresh app and database clone.
 *
 * Settings (environment):
 * - MODEL_RUNS: sequences (default 40, about a minute on 2 cores). The long setting is 2,000 sequences: four processes
 *   of MODEL_RUNS=500 with MODEL_SEED=20261221 to 20261224 (about an hour on 2 cores; see the README).
 * - MODEL_STEPS: at most this many steps after 1 to 4 initial subscriptions (default 30).
 * - MODEL_SEED: the default is a fixed seed, so `npm test` runs the same sequences every time; MODEL_SEED=random
 *   explores, a number replays (fast-check prints the seed and path of a failure; MODEL_PATH replays that path).
 * - MODEL_SHRINK=0: stop at the first failure without shrinking it (shrinking takes minutes).
 * - MODEL_NO_RESERVE_DROP=1: never drop the answer of a reservation registration (to explore other faults).
 * - MODEL_PROGRESS=file: append a line per sequence passed (to follow a long run). MODEL_LOG=file: append every failing sequence (as it shrinks) to the file; MODEL_VERBOSE=1 (2: with the ledger)
 *   prints every sequence. On a failure, MODEL_SERVICE_LOG=file appends the service's log lines and MODEL_DB_DUMP=file
 *   its subscriptions and payments as stored.
 * A failure prints the shrunk sequence as constructor calls, the clock and answer of every step, and each
 * subscription's payments beside Bootpay's charges: paste it below as a named regression test.
 */

const RUNS = Number(process.env.MODEL_RUNS ?? 40);
const STEPS = Number(process.env.MODEL_STEPS ?? 30);
/** The default run is the same every time (a fixed seed); MODEL_SEED=random, or a number, to explore or replay. */
const DEFAULT_SEED = 20261126;
const SEED = process.env.MODEL_SEED === 'random' ? undefined : Number(process.env.MODEL_SEED ?? DEFAULT_SEED);
const PATH = process.env.MODEL_PATH;

/** Sequences passed so far (MODEL_PROGRESS). */
let passed = 0;

/** One sequence on a fresh service: every step, then a final settle and its checks. */
async function runSequence(steps: Iterable<fc.AsyncCommand<Model, World>>) {
  const world = await World.start();
  const model = World.initialModel();
  try {
    await fc.asyncModelRun(() => ({ model, real: world }), steps);
    await new Settle().run(model, world);
    if (process.env.MODEL_VERBOSE || process.env.MODEL_PROGRESS) {
      const l = world.t.fake.ledger();
      const summary = `${world.trace.length} steps, ${model.subs.length} subscriptions, ${l.charges.length} charges, ${l.failed_charges.length} declines, ${l.cancels.length} refunds, ${l.reservations.length} reservations`;
      if (process.env.MODEL_PROGRESS) appendFileSync(process.env.MODEL_PROGRESS, `${new Date().toISOString()} passed ${++passed}: ${summary}\n`);
      if (process.env.MODEL_VERBOSE) {
        console.log(`${summary}\n  ${world.trace.join('\n  ')}\n${process.env.MODEL_VERBOSE === '2' ? await world.describe(model) : ''}`);
      }
    }
  } catch (e) {
    (e as Error).message += `\nsteps run (clock, step):\n  ${world.trace.join('\n  ')}\n${await world.describe(model).catch((d) => `(no description: ${d})`)}`;
    if (process.env.MODEL_LOG) appendFileSync(process.env.MODEL_LOG, `${new Date().toISOString()} FAILED ${(e as Error).message}\n\n`);
    if (process.env.MODEL_DB_DUMP) await dumpStored(world, process.env.MODEL_DB_DUMP);
    if (process.env.MODEL_SERVICE_LOG) appendFileSync(process.env.MODEL_SERVICE_LOG, `${world.t.logs.join('\n')}\n`);
    throw e;
  } finally {
    await world.close();
  }
}

/** MODEL_DB_DUMP: a failing sequence's subscriptions and payments as stored; a dump that fails is noted, never thrown. */
async function dumpStored(world: World, file: string) {
  try {
    const subs = await world.t.db.query(
      `SELECT id, status, plan_id, next_charge_at, current_period_start, current_period_end, credit_balance, pending_plan_id, period_index, anchor_at FROM subscriptions`,
    );
    const pays = await world.t.db.query(
      `SELECT subscription_id, order_id, status, amount, credit_applied, period_start, period_index, charge_run_id FROM payments ORDER BY created_at`,
    );
    appendFileSync(file, JSON.stringify({ subs: subs.rows, pays: pays.rows }, null, 1));
  } catch (err) {
    appendFileSync(file, `(no dump: ${(err as Error).message})\n`);
  }
}

describe('Model-based test: every interleaving of runs, actions and Bootpay faults keeps the money right', () => {
  it(
    `holds the invariants over ${RUNS} random sequences of up to ${STEPS} steps`,
    async () => {
      await fc.assert(
        fc.asyncProperty(initialSubs, fc.commands([stepArbitrary], { maxCommands: STEPS, size: 'max' }), async (first, cmds) =>
          runSequence([...first, ...cmds]),
        ),
        { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), ...(PATH ? { path: PATH } : {}), endOnFailure: process.env.MODEL_SHRINK === '0' },
      );
    },
    Math.max(120_000, RUNS * 60_000),
  );

  // ------------------------------------------------------------------ regressions: sequences the model found failing

  // Found by this test: an unconfirmed reservation (its registration answer was lost, so the service holds no
  // reserve_id) that Bootpay executed with its webhook lost was withdrawn unsent by an action (a key swap, a plan
  // change), and the run charged its period again. Now such a reservation stays while the subscription goes on, and
  // its period is resolved by re-sending its order_id (a duplicate means it executed); it is withdrawn only for a
  // paused or ended subscription, with a finance flag.
  it('regression (unconfirmed reservation executed with its webhook lost: its period charged once): as found', async () => {
    await runSequence([
      new CreateSub(0, 0, 0, 'now'),
      new LoseWebhooks(),
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(0, 0, 4, 'now'),
      new Advance(2678400000),
      new CreateSub(0, 0, 0, 'now'),
      new SwapKey(4, 0),
      new Settle(),
    ]);
  }, 60_000);

  // Bootpay executes the reservation on time (2026-01-22); a refused key swap an hour later withdraws it; the next run
  // charges week 2 again (p2).
  it('regression (unconfirmed reservation executed with its webhook lost: its period charged once): executed on time, then withdrawn', async () => {
    await runSequence([
      new LoseWebhooks(),
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(0, 0, 4, 'now'),
      new Advance(WEEK),
      new ExecuteReservations(),
      new Advance(HOUR),
      new SwapKey(0, 0),
      new Advance(DAY),
      new Run(),
      new Settle(),
    ]);
  }, 60_000);

  // Withdrawn before it fell due (a plan change at period end right after the sign-up replaces the reservations):
  // Bootpay still holds it, executes it on time with its webhook lost, and the run charges week 2 again at the new price.
  it('regression (unconfirmed reservation executed with its webhook lost: its period charged once): withdrawn, then executed', async () => {
    await runSequence([
      new LoseWebhooks(),
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(0, 0, 4, 'now'),
      new ChangePlan(0, 5, 'period_end'),
      new Advance(WEEK),
      new ExecuteReservations(),
      new Run(),
      new Settle(),
    ]);
  }, 60_000);

  // Found by this test: three subscriptions share one billing key whose card became lost or stolen; the run's three
  // declines were recorded concurrently and two deadlocked on the key's row, leaving attempts open. Settlements on one
  // key now go one after another (and a deadlocked one is run again).
  it('regression: declines of three subscriptions on one hard-declined key are all recorded', async () => {
    await runSequence([
      new CreateSub(1, 0, 0, 'now'),
      new CreateSub(1, 0, 1, 'now'),
      new CreateSub(1, 0, 1, 'now'),
      new Decline(2, 'lost_or_stolen'),
      new Advance(31 * DAY),
      new Settle(),
    ]);
  }, 60_000);

  // Found while building the model: a weekly plan left a month without runs is caught up one period per run (the
  // settling step runs until a run charges nothing). Kept as a check of the settling step.
  it('regression: a trial ending during a month without runs is caught up by the settling runs', async () => {
    await runSequence([new CreateSub(0, 0, 0, 'now'), new CreateSub(0, 0, 3, 'now'), new Advance(2678400000), new Settle()]);
  }, 60_000);

  it('regression (a reservation executed late fails as a duplicate of the run’s re-send, whose answer was lost: the re-send’s approval is kept): as found', async () => {
    await runSequence([
      new CreateSub(1, 0, 1, 'now'),
      new RestoreWebhooks(),
      new Refund(6, 2, true),
      new Run(),
      new DropNextAnswer('subscribe/payment/reserve'),
      new Decline(3, 'lost_or_stolen'),
      new CancelAtPeriodEnd(5),
      new Refund(4, 2, true),
      new CreateSub(0, 1, 0, 'month_end'),
      new Advance(3600000),
      new Advance(1209600000),
      new CreateSub(0, 1, 4, 'now'),
      new Advance(279159600),
      new ChangePlan(0, 4, 'period_end'),
      new Pause(6),
      new Decline(3, 'insufficient_funds'),
      new LoseWebhooks(),
      new Pause(6),
      new ToMonthEnd(),
      new Advance(604800000),
      new ChangePlan(4, 5, 'now'),
      new Recover(2),
      new Advance(604800000),
      new Resume(1),
      new Advance(2678400000),
      new DropNextAnswer('subscribe/payment'),
      new Resume(0),
      new Run(),
      new ExecuteReservations(),
    ]);
  }, 120_000);

  it('regression (a reservation executed late fails as a duplicate of the run’s re-send, whose answer was lost: the re-send’s approval is kept): shortest', async () => {
    await runSequence([
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(0, 0, 4, 'now'),
      new Advance(8 * DAY),
      new LoseWebhooks(),
      new DropNextAnswer('subscribe/payment'),
      new Run(),
      new ExecuteReservations(),
    ]);
  }, 60_000);

  it('regression (a weekly subscription changed to a plan with a credit, with attempts held back until the lookup delay: the settling runs catch every period up): as found', async () => {
    await runSequence([
      new CreateSub(1, 1, 4, 'now'),
      new CreateSub(0, 0, 2, 'now'),
      new ChangePlan(5, 3, 'now'),
      new ReplayHeld(false),
      new CancelAtPeriodEnd(6),
      new TwoRuns(false),
      new Run(),
      new ReplayHeld(true),
      new ReplayHeld(true),
      new Advance(2678400000),
    ]);
  }, 120_000);

  it('regression (an unconfirmed reservation executed after an acknowledged cancel at period end is refunded, not renewed): as found', async () => {
    await runSequence([
      new CreateSub(0, 1, 0, 'now'),
      new CreateSub(0, 1, 1, 'month_end'),
      new CreateSub(1, 0, 1, 'now'),
      new CancelNow(3, true),
      new DropNextAnswer('subscribe/payment/reserve'),
      new LoseWebhooks(),
      new Run(),
      new DropNextAnswer('subscribe/payment'),
      new DropNextAnswer('subscribe/payment/reserve'),
      new Settle(),
      new Run(),
      new Reactivate(6),
      new ChangePlan(1, 1, 'now'),
      new Advance(2678400000),
      new Recover(3),
      new CreateSub(0, 1, 2, 'now'),
      new Run(),
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(1, 0, 4, 'now'),
      new CancelAtPeriodEnd(4),
      new Pause(4),
      new Run(),
      new ExecuteReservations(),
      new Resume(4),
      new CancelAtPeriodEnd(6),
      new Advance(661983949),
      new ChangePlan(2, 5, 'now'),
    ]);
  }, 120_000);

  // Found by the long run (seed 20261202): a trial in reservation mode whose reservation for the trial's end was
  // never confirmed (its registration answer lost), set to cancel at period end. After the trial ended, the run
  // resolved the due reservation by sending its order_id, because the subscription was still trialing, and the
  // approval was then refused and refunded: a charge after an acknowledged cancel. An unconfirmed reservation is now
  // sent only if the transition authority would apply its approval; otherwise it is withdrawn unsent (with a flag).
  it('regression (unconfirmed reservation of a trial set to cancel at period end: nothing charged): as found, shortened', async () => {
    await runSequence([
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(0, 0, 5, 'now'),
      new CancelAtPeriodEnd(0),
      new Advance(WEEK + DAY),
      new Run(),
      new Settle(),
    ]);
  }, 60_000);

  // Bootpay executes the withdrawn reservation late, its webhook arriving: the late approval is refunded.
  it('regression (unconfirmed reservation of a trial set to cancel at period end: nothing charged): executed after the withdrawal', async () => {
    await runSequence([
      new DropNextAnswer('subscribe/payment/reserve'),
      new CreateSub(0, 0, 5, 'now'),
      new CancelAtPeriodEnd(0),
      new LoseWebhooks(),
      new Advance(WEEK + DAY),
      new Run(),
      new Settle(),
    ]);
  }, 60_000);

  it('regression (unconfirmed reservation of a trial set to cancel at period end: nothing charged): as found', async () => {
    await runSequence([
      new CreateSub(1, 1, 0, 'now'),
      new CancelAtPeriodEnd(6),
      new Decline(3, 'insufficient_funds'),
      new Resume(3),
      new DropNextAnswer('subscribe/payment/reserve'),
      new Decline(1, 'insufficient_funds'),
      new Advance(1114145870),
      new LoseWebhooks(),
      new LoseWebhooks(),
      new Advance(3600000),
      new Advance(1748708198),
      new Advance(1300644613),
      new CreateSub(0, 0, 5, 'month_end'),
      new CreateSub(0, 0, 0, 'now'),
      new Decline(1, 'insufficient_funds'),
      new Advance(604800000),
      new CancelAtPeriodEnd(2),
      new ToMonthEnd(),
      new Resume(5),
      new Run(),
      new Run(),
      new Decline(3, 'insufficient_funds'),
      new CancelAtPeriodEnd(7),
      new Advance(968624661),
      new Pause(2),
      new CreateSub(1, 0, 2, 'now'),
      new Run(),
      new Settle(),
    ]);
  }, 120_000);

  // Found by the long run: a reserved monthly subscription, paused in its trial and resumed after it (charged 33,000
  // for a month), changed at once to a weekly plan of 7,700. Its credit paid three overdue weeks in full, one per run,
  // but each of those runs reported due 0, charged 0: the settling (like an operator reading the report) took the
  // subscription as up to date, and the fourth week (2,200 of credit, 5,500 to the card) was left uncharged. A renewal
  // paid by credit now counts as due and charged.
  it('regression (a reserved period partly paid by credit after a plan change is charged): as found', async () => {
    await runSequence([
      new CreateSub(1, 0, 4, 'now'),
      new CreateSub(0, 0, 5, 'now'),
      new ReplayHeld(false),
      new Reactivate(4),
      new Pause(7),
      new CancelAtPeriodEnd(0),
      new Advance(2678400000),
      new Pause(7),
      new ChangePlan(2, 2, 'period_end'),
      new Run(),
      new Resume(1),
      new Run(),
      new ChangePlan(7, 4, 'now'),
      new Advance(2678400000),
      new Advance(2678400000),
      new Settle(),
    ]);
  }, 120_000);

  it('regression: a plain month of both charge modes settles', async () => {
    await runSequence([
      new CreateSub(0, 0, 0, 'now'),
      new CreateSub(1, 0, 2, 'now'),
      new Advance(31 * DAY),
      new Run(),
      new ExecuteReservations(),
      new Settle(),
    ]);
  }, 60_000);
});

// Keep every command class referenced, so regression sequences can use any of them.
void [
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
  SwapKey,
  ToMonthEnd,
  TwoRuns,
  HOUR,
  MINUTE,
  WEEK,
];
