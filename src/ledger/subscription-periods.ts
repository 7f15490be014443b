import { addDays, fromZonedParts, periodStart, zonedParts } from '../billing-math';
import type { SubscriptionEntity } from './subscription.entity';
import type { Period, PlanTerms } from './transition-types';

/** A subscription's periods, counted from its anchor in the business time zone, and the due-day rule. */

export function periodAt(anchor: Date, plan: PlanTerms, index: number, tz: string): Period {
  return {
    index,
    start: periodStart(anchor, plan.interval, plan.intervalCount, index, tz),
    end: periodStart(anchor, plan.interval, plan.intervalCount, index + 1, tz),
  };
}

/** The period the next charge pays for. */
export function nextPeriod(sub: Pick<SubscriptionEntity, 'anchorAt' | 'periodIndex'>, plan: PlanTerms, tz: string): Period {
  return periodAt(sub.anchorAt, plan, sub.periodIndex + 1, tz);
}

/**
 * The period a charge made now pays for. Normally the next period; but a past_due or unpaid subscription whose
 * outstanding period has already ended is re-anchored: the charge pays for a new period that starts now (index 0 of
 * a new anchor), so that a subscription is never made `active` with its paid period already over. The periods it
 * spent unpaid are not charged.
 */
export function chargePeriod(sub: Pick<SubscriptionEntity, 'anchorAt' | 'periodIndex' | 'status'>, plan: PlanTerms, now: Date, tz: string): Period {
  const next = nextPeriod(sub, plan, tz);
  if ((sub.status === 'past_due' || sub.status === 'unpaid') && next.end.getTime() <= now.getTime()) return periodAt(now, plan, 0, tz);
  return next;
}

/**
 * Due by business day: a charge (renewal, trial end, retry) due at any time of a business date is made by the first
 * run on that date, whatever the time of day of its anchor. The run charges what falls due before this instant: the
 * start of the business day after `at`, in the business time zone.
 */
export function dueBefore(at: Date, tz: string): Date {
  const p = zonedParts(at, tz);
  return addDays(fromZonedParts({ year: p.year, month: p.month, day: p.day }, tz), 1, tz);
}
