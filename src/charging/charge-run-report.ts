import { DataSource } from 'typeorm';

/**
 * Exit codes of `npm run charge-run` (README, "The charge run"):
 * - 0: every due subscription was charged or declined normally;
 * - 3: the run finished, but outcomes are unknown or attempts were aborted (nothing charged, still due): look at them;
 * - 4: the run itself failed (or was interrupted);
 * - 1: the command could not run (a setting, the database); 2: wrong usage.
 */
export const CHARGE_RUN_EXIT = Object.freeze({ OK: 0, ATTENTION: 3, RUN_FAILED: 4 });

/** One attempt of a run that did not end in a charge, with what an operator needs to look it up. */
export interface RunFailure {
  subscription_id: string;
  payment_id: string;
  /** unknown: sent, no answer yet (the next run resolves it); aborted: nothing was charged, still due; declined: by the card company. */
  kind: 'unknown' | 'aborted' | 'declined';
  status: string;
  reason: string;
}

/**
 * The attempts of a charge run that did not end in a charge, read from its payments (charge_run_id) after the run. An
 * ABORTED attempt whose subscription is still due (not moved into dunning or ended) was not a decline: nothing was
 * charged (Bootpay unreachable, a local fault).
 */
export async function runFailures(db: DataSource, runId: string): Promise<RunFailure[]> {
  const rows: { id: string; subscription_id: string; status: string; failure_code: string | null; failure_message: string | null; still_due: boolean }[] =
    await db.query(
      `SELECT p.id, p.subscription_id, p.status, p.failure_code, p.failure_message,
              (s.status IN ('incomplete', 'trialing', 'active') AND s.next_charge_at <= r.as_of)
              OR (s.status = 'past_due' AND s.next_retry_at <= r.as_of) AS still_due
       FROM payments p JOIN charge_runs r ON r.id = p.charge_run_id JOIN subscriptions s ON s.id = p.subscription_id
       WHERE p.charge_run_id = $1 AND p.status IN ('IN_PROGRESS', 'UNKNOWN', 'ABORTED')
       ORDER BY p.created_at, p.id`,
      [runId],
    );
  return rows.map((p) => {
    const kind: RunFailure['kind'] = p.status !== 'ABORTED' ? 'unknown' : p.still_due ? 'aborted' : 'declined';
    const reason =
      kind === 'unknown'
        ? 'outcome unknown (no answer from Bootpay or not recorded); the next run resolves it'
        : `${p.failure_code ?? 'failed'}${p.failure_message ? `: ${p.failure_message}` : ''}`;
    return { subscription_id: p.subscription_id, payment_id: p.id, kind, status: p.status, reason };
  });
}

/** The exit code of a run from its status and its failures. */
export function chargeRunExitCode(status: string, failures: readonly RunFailure[]): number {
  if (status !== 'completed') return CHARGE_RUN_EXIT.RUN_FAILED;
  return failures.some((f) => f.kind !== 'declined') ? CHARGE_RUN_EXIT.ATTENTION : CHARGE_RUN_EXIT.OK;
}

/** The summary lines: the attempts needing attention first, then the declines, at most `limit` of each. */
export function failureSummary(failures: readonly RunFailure[], limit = 10): string {
  const lines: string[] = [];
  const section = (title: string, list: readonly RunFailure[]) => {
    if (!list.length) return;
    lines.push(`${title}: ${list.length}${list.length > limit ? ` (first ${limit}; --json lists all)` : ''}`);
    for (const f of list.slice(0, limit)) lines.push(`  subscription ${f.subscription_id}  payment ${f.payment_id}  ${f.kind}  ${f.reason}`);
  };
  section(
    'Needs attention (unknown outcome or nothing charged)',
    failures.filter((f) => f.kind !== 'declined'),
  );
  section(
    'Declined',
    failures.filter((f) => f.kind === 'declined'),
  );
  return lines.length ? `${lines.join('\n')}\n` : '';
}
