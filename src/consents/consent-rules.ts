import { addDays } from '../billing-math';
import type { SubscriptionEntity } from '../ledger/subscription.entity';
import { ConsentKind, CONSENT_WINDOW_DAYS, periodAt, PlanTerms } from '../ledger/transitions';

/**
 * The rules of 전자상거래법 제13조 제6항 and 시행령 제20조의2, as pure functions: a consent to a paid conversion or a
 * price increase counts only when it was obtained within the 30 days before the change it covers (not after it) and
 * has not been withdrawn.
 */
export { CONSENT_WINDOW_DAYS };

export type ConsentStatus = 'valid' | 'too_early' | 'after_change' | 'withdrawn';

export interface ConsentFacts {
  obtainedAt: Date;
  withdrawnAt: Date | null;
}

/** The first instant at which a consent to a change at `changeAt` may be obtained. */
export function consentWindowOpens(changeAt: Date, tz: string): Date {
  return addDays(changeAt, -CONSENT_WINDOW_DAYS, tz);
}

/** Whether a consent covers a change at `changeAt`, and if not, why. */
export function consentStatus(c: ConsentFacts, changeAt: Date, tz: string): ConsentStatus {
  if (c.withdrawnAt) return 'withdrawn';
  if (c.obtainedAt.getTime() > changeAt.getTime()) return 'after_change';
  if (c.obtainedAt.getTime() < consentWindowOpens(changeAt, tz).getTime()) return 'too_early';
  return 'valid';
}

/** The valid consent of `kind` (and change) for a change at `changeAt`, the most recent first; null when none counts. */
export function validConsent<T extends ConsentFacts & { id: string; kind: string; changeId: string | null; amountAfter: number }>(
  consents: readonly T[],
  want: { kind: ConsentKind; changeId?: string | null; changeAt: Date; amountAfter: number },
  tz: string,
): T | null {
  let best: T | null = null;
  for (const c of consents) {
    if (c.kind !== want.kind) continue;
    if (want.kind === 'price_increase' && c.changeId !== want.changeId) continue;
    // A consent covers its subscription's change whatever plan change the SaaS backend asked for since: a change-plan
    // on the customer's own request counts as consent to its price, given then.
    if (consentStatus(c, want.changeAt, tz) !== 'valid') continue;
    if (!best || c.obtainedAt.getTime() > best.obtainedAt.getTime()) best = c;
  }
  return best;
}

/**
 * The renewal at which a plan migration effective at `effectiveAt` moves a subscription: its first renewal on or after
 * that instant. A trialing subscription converts on its own plan first (its trial end is not a renewal of a paid
 * period), so its first renewal is the end of its first paid period.
 */
export function migrationChangeAt(
  sub: Pick<SubscriptionEntity, 'status' | 'anchorAt' | 'periodIndex' | 'nextChargeAt'>,
  plan: PlanTerms,
  effectiveAt: Date,
  tz: string,
): Date {
  if (sub.status === 'active' && sub.nextChargeAt && sub.nextChargeAt.getTime() >= effectiveAt.getTime()) return sub.nextChargeAt;
  let index = sub.periodIndex + (sub.status === 'trialing' ? 2 : 1);
  for (let i = 0; i < 10_000; i++, index++) {
    const start = periodAt(sub.anchorAt, plan, index, tz).start;
    if (start.getTime() >= effectiveAt.getTime()) return start;
  }
  return effectiveAt;
}

/** What the charge run does at a due subscription's renewal or trial end. */
export type RenewalDecision =
  | { action: 'charge'; consentId: string | null }
  | { action: 'migrate'; toPlanId: string; migrationId: string; consentId: string | null }
  | { action: 'consent_missing'; kind: ConsentKind; changeId: string | null };

export interface MigrationFacts {
  id: string;
  fromPlanId: string;
  toPlanId: string;
  toAmount: number;
  effectiveAt: Date;
  requiresConsent: boolean;
}

export interface StoredConsent extends ConsentFacts {
  id: string;
  kind: string;
  changeId: string | null;
  amountAfter: number;
}

/**
 * The decision for a subscription the run claimed (one not set to cancel at period end and with no pending plan: the
 * SaaS backend's own change-plan counts as the customer's consent given then). `planAmount` is its current plan's.
 */
export function decideRenewal(
  sub: Pick<SubscriptionEntity, 'status' | 'nextChargeAt'>,
  planAmount: number,
  migration: MigrationFacts | null,
  consents: readonly StoredConsent[],
  settings: { required: boolean; tz: string },
): RenewalDecision {
  const changeAt = sub.nextChargeAt;
  if (!changeAt) return { action: 'charge', consentId: null };
  if (sub.status === 'trialing') {
    // A free trial turning into paid recurring payments (유료 전환).
    if (!settings.required || planAmount <= 0) return { action: 'charge', consentId: null };
    const c = validConsent(consents, { kind: 'trial_conversion', changeAt, amountAfter: planAmount }, settings.tz);
    return c ? { action: 'charge', consentId: c.id } : { action: 'consent_missing', kind: 'trial_conversion', changeId: null };
  }
  if (sub.status === 'active' && migration && migration.effectiveAt.getTime() <= changeAt.getTime()) {
    if (!settings.required || !migration.requiresConsent)
      return { action: 'migrate', toPlanId: migration.toPlanId, migrationId: migration.id, consentId: null };
    const c = validConsent(consents, { kind: 'price_increase', changeId: migration.id, changeAt, amountAfter: migration.toAmount }, settings.tz);
    return c
      ? { action: 'migrate', toPlanId: migration.toPlanId, migrationId: migration.id, consentId: c.id }
      : { action: 'consent_missing', kind: 'price_increase', changeId: migration.id };
  }
  return { action: 'charge', consentId: null };
}
