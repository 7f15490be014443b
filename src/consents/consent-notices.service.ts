import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { addDays } from '../billing-math';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { Runtime, RUNTIME } from '../config/runtime';
import { SubscriptionEventsService } from '../ledger/subscription-events.service';
import { SubscriptionEntity } from '../ledger/subscription.entity';
import { dueBefore } from '../ledger/transitions';
import { PlansService, PlanTerms } from '../plans/plans.service';
import type { CreationNotice } from '../ledger/subscriptions/create-subscription';
import { CONSENT_WINDOW_DAYS, consentWindowOpens, migrationChangeAt } from './consent-rules';

export type NoticeKind = 'consent_required' | 'renewal_upcoming';

export interface NoticeCounts {
  consent_required: number;
  renewal_upcoming: number;
}

interface Notice {
  subscriptionId: string;
  kind: NoticeKind;
  /** What the notice is about: one notice per subscription, kind and change. */
  changeKey: string;
  changeAt: Date;
  object: Record<string, unknown>;
}

const epoch = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * The notices before a charge the consumer must know of, as outbound webhook events:
 * - `subscription.consent_required` on the business day a subscription enters the 30 days before a paid conversion
 *   (a trial's end) or a price increase (a plan migration), at creation for a trial of 30 days or less;
 * - `subscription.renewal_upcoming` RENEWAL_NOTICE_DAYS business days before each renewal (and trial end).
 * Each is sent once per subscription and change: a unique row (consent_notices) is written with the event, in one
 * transaction holding the subscription's row lock, so instances, repeated sweeps and restarts never send it twice.
 */
@Injectable()
export class ConsentNoticesService {
  private readonly logger = new Logger(ConsentNoticesService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly events: SubscriptionEventsService,
    private readonly plans: PlansService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  private get tz(): string {
    return this.runtime.config.businessTimeZone;
  }

  /** Sends every notice due by the end of the business day of `asOf` (all subscriptions, or one). */
  async sweep(asOf: Date = this.clock.now(), onlySubscriptionId: string | null = null): Promise<NoticeCounts> {
    const counts: NoticeCounts = { consent_required: 0, renewal_upcoming: 0 };
    const notices = [...(await this.consentRequired(asOf, onlySubscriptionId)), ...(await this.renewalsUpcoming(asOf, onlySubscriptionId))];
    for (const n of notices) {
      try {
        if (await this.send(n)) counts[n.kind]++;
      } catch (err) {
        // One notice that fails never stops the others; the next sweep sends it.
        this.logger.warn({
          message: 'notice not sent; the next sweep tries again',
          subscription_id: n.subscriptionId,
          kind: n.kind,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    if (!onlySubscriptionId) this.logger.log({ message: 'consent notices swept', as_of: asOf.toISOString(), ...counts });
    return counts;
  }

  /**
   * The notice written with a new subscription (by its creation statement): a trial that ends within the 30 days ahead
   * is inside the window of its paid conversion at once. The same notice, key and object as the sweep's.
   */
  atCreation(sub: SubscriptionEntity, plan: PlanTerms): CreationNotice | null {
    const at = sub.nextChargeAt;
    if (!this.runtime.config.consent.required || sub.status !== 'trialing' || Number(plan.amount) <= 0 || !at) return null;
    const now = this.clock.now();
    if (at.getTime() <= now.getTime() || at.getTime() >= this.consentHorizon(now).getTime()) return null;
    return {
      kind: 'consent_required',
      changeKey: `trial_conversion:${epoch(at)}`,
      changeAt: at,
      object: this.noticeObject('trial_conversion', null, at, { id: plan.id, amount: 0 }, { id: plan.id, name: null, amount: Number(plan.amount) }),
    };
  }

  /**
   * A new trialing subscription whose plan has a price increase requiring consent within 30 days: its notice goes now
   * (its trial's own notice went with its creation). One query when the plan has none; anything else is the sweep's.
   */
  async afterCreate(sub: { id: string; status: string; plan_id: string }): Promise<void> {
    if (sub.status !== 'trialing') return;
    try {
      for (const n of await this.consentRequired(this.clock.now(), sub.id, { trials: false, planId: sub.plan_id })) await this.send(n);
    } catch (err) {
      this.logger.warn({
        message: 'notice at creation not sent; the next sweep sends it',
        subscription_id: sub.id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** The end of the window entered by `asOf`'s business day: changes before it need their consent notice now. */
  private consentHorizon(asOf: Date): Date {
    // The window of a change opens 30 days before it: it is entered on the business day that contains that instant.
    return addDays(dueBefore(asOf, this.tz), CONSENT_WINDOW_DAYS, this.tz);
  }

  private async consentRequired(asOf: Date, only: string | null, scope = { trials: true, planId: null as string | null }): Promise<Notice[]> {
    const c = this.runtime.config.consent;
    if (!c.required) return [];
    const horizon = this.consentHorizon(asOf);
    const out: Notice[] = [];
    type Trial = { id: string; plan_id: string; name: string; amount: string; next_charge_at: Date };
    const trials: Trial[] = !scope.trials
      ? []
      : await this.db.query(
          `SELECT s.id, s.plan_id, p.name, p.amount, s.next_charge_at FROM subscriptions s JOIN plans p ON p.id = s.plan_id
       WHERE s.status = 'trialing' AND p.amount > 0 AND s.next_charge_at > $1 AND s.next_charge_at < $2 AND ($3::uuid IS NULL OR s.id = $3)
         AND NOT EXISTS (SELECT 1 FROM consent_notices n WHERE n.subscription_id = s.id AND n.kind = 'consent_required'
                           AND n.change_key = 'trial_conversion:' || extract(epoch FROM s.next_charge_at)::bigint)
       ORDER BY s.next_charge_at, s.id LIMIT 5000`,
          [asOf, horizon, only],
        );
    for (const t of trials) {
      out.push({
        subscriptionId: t.id,
        kind: 'consent_required',
        changeKey: `trial_conversion:${epoch(t.next_charge_at)}`,
        changeAt: t.next_charge_at,
        object: this.noticeObject(
          'trial_conversion',
          null,
          t.next_charge_at,
          { id: t.plan_id, amount: 0 },
          { id: t.plan_id, name: t.name, amount: Number(t.amount) },
        ),
      });
    }
    const migrations: { id: string; from_plan_id: string; to_plan_id: string; effective_at: Date; to_name: string; to_amount: string }[] = await this.db.query(
      `SELECT mg.id, mg.from_plan_id, mg.to_plan_id, mg.effective_at, p.name AS to_name, p.amount AS to_amount
       FROM plan_migrations mg JOIN plans p ON p.id = mg.to_plan_id WHERE mg.requires_consent AND ($1::uuid IS NULL OR mg.from_plan_id = $1)`,
      [scope.planId],
    );
    for (const mg of migrations) {
      const from = await this.plans.terms(mg.from_plan_id);
      if (!from) continue;
      const subs = await this.db
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .where(`s.plan_id = :plan AND s.status IN ('trialing', 'active', 'past_due')`, { plan: mg.from_plan_id })
        .andWhere('(CAST(:only AS uuid) IS NULL OR s.id = :only)', { only })
        .andWhere(`NOT EXISTS (SELECT 1 FROM consent_notices n WHERE n.subscription_id = s.id AND n.kind = 'consent_required' AND n.change_key = :key)`, {
          key: `migration:${mg.id}`,
        })
        // The earliest changes first (a change's date follows the subscription's next charge), so none is starved.
        .orderBy('s.next_charge_at', 'ASC', 'NULLS LAST')
        .addOrderBy('s.id', 'ASC')
        .limit(5000)
        .getMany();
      for (const sub of subs) {
        const changeAt = migrationChangeAt(sub, from, mg.effective_at, this.tz);
        if (changeAt.getTime() >= horizon.getTime() || changeAt.getTime() <= asOf.getTime()) continue;
        out.push({
          subscriptionId: sub.id,
          kind: 'consent_required',
          changeKey: `migration:${mg.id}`,
          changeAt,
          object: this.noticeObject(
            'price_increase',
            mg.id,
            changeAt,
            { id: from.id, amount: from.amount },
            { id: mg.to_plan_id, name: mg.to_name, amount: Number(mg.to_amount) },
          ),
        });
      }
    }
    return out;
  }

  private async renewalsUpcoming(asOf: Date, only: string | null): Promise<Notice[]> {
    const days = this.runtime.config.consent.renewalNoticeDays;
    if (days <= 0) return [];
    const horizon = addDays(dueBefore(asOf, this.tz), days, this.tz);
    // The plan the renewal will charge: a pending change, else the plan a migration moves it to from then, else its own.
    const rows: { id: string; status: string; next_charge_at: Date; plan_id: string; name: string; amount: string }[] = await this.db.query(
      `SELECT s.id, s.status, s.next_charge_at, p.id AS plan_id, p.name, p.amount
       FROM subscriptions s
       LEFT JOIN plan_migrations mg ON mg.from_plan_id = s.plan_id AND mg.effective_at <= s.next_charge_at AND s.status = 'active' AND s.pending_plan_id IS NULL
       JOIN plans p ON p.id = COALESCE(s.pending_plan_id, mg.to_plan_id, s.plan_id)
       WHERE s.status IN ('trialing', 'active') AND NOT s.cancel_at_period_end AND p.amount > 0
         AND s.next_charge_at > $1 AND s.next_charge_at < $2 AND ($3::uuid IS NULL OR s.id = $3)
         AND NOT EXISTS (SELECT 1 FROM consent_notices n WHERE n.subscription_id = s.id AND n.kind = 'renewal_upcoming'
                           AND n.change_key = 'renewal:' || extract(epoch FROM s.next_charge_at)::bigint)
       ORDER BY s.next_charge_at, s.id LIMIT 5000`,
      [asOf, horizon, only],
    );
    return rows.map((r) => ({
      subscriptionId: r.id,
      kind: 'renewal_upcoming' as const,
      changeKey: `renewal:${epoch(r.next_charge_at)}`,
      changeAt: r.next_charge_at,
      object: {
        object: 'notice',
        kind: 'renewal_upcoming',
        subscription_id: r.id,
        charge: r.status === 'trialing' ? 'trial_conversion' : 'renewal',
        date: r.next_charge_at.toISOString(),
        amount: Number(r.amount),
        currency: 'KRW',
        plan: { id: r.plan_id, name: r.name },
        cancel: 'Cancelling before this date (POST /v1/subscriptions/:id/cancel) stops the charge; at_period_end keeps the service until then.',
      },
    }));
  }

  private noticeObject(
    kind: 'trial_conversion' | 'price_increase',
    changeId: string | null,
    changeAt: Date,
    before: { id: string; amount: number },
    after: { id: string; name: string | null; amount: number },
  ) {
    const action = this.runtime.config.consent.missingAction;
    return {
      object: 'notice',
      kind: 'consent_required',
      change: kind,
      change_id: changeId,
      date: changeAt.toISOString(),
      consent_window_opens_at: consentWindowOpens(changeAt, this.tz).toISOString(),
      price_before: before.amount,
      amount: after.amount,
      currency: 'KRW',
      plan_id_before: before.id,
      plan: { id: after.id, name: after.name },
      without_consent: {
        action,
        effect:
          action === 'cancel'
            ? 'Nothing is charged: the subscription ends on this date (at the end of the trial or of the period paid at the old price).'
            : 'Nothing is charged: the subscription is paused on this date until an admin resumes it.',
      },
    };
  }

  /** Writes the notice's row and its event in one transaction under the subscription's lock; false when it was sent already. */
  private async send(n: Notice): Promise<boolean> {
    return this.db.transaction(async (m) => {
      // A subscription the run holds is skipped: the next sweep comes back to it.
      const sub = await m
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .setLock('pessimistic_write')
        .setOnLocked('skip_locked')
        .where('s.id = :id', { id: n.subscriptionId })
        .getOne();
      if (!sub) return false;
      const inserted = returnedRows<{ id: string }>(
        await m.query(
          `INSERT INTO consent_notices (subscription_id, kind, change_key, change_at, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (subscription_id, kind, change_key) DO NOTHING RETURNING id`,
          [sub.id, n.kind, n.changeKey, n.changeAt, this.clock.now()],
        ),
      );
      if (!inserted.length) return false;
      await this.events.record(m, sub, `subscription.${n.kind}`, 'system', {
        object: { id: inserted[0].id, ...n.object },
        data: { notice_id: inserted[0].id, ...n.object },
      });
      return true;
    });
  }

  /** The scheduled sweep: one instance per tick (the tick's row), the others skip it. */
  async tick(scheduledFor: Date, worker: string): Promise<NoticeCounts | null> {
    const claimed = returnedRows<{ scheduled_for: Date }>(
      await this.db.query(
        `INSERT INTO consent_notice_ticks (scheduled_for, worker, started_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING scheduled_for`,
        [scheduledFor, worker.slice(0, 100), new Date()],
      ),
    );
    if (!claimed.length) return null;
    await this.db.query(`DELETE FROM consent_notice_ticks WHERE scheduled_for < $1`, [new Date(scheduledFor.getTime() - 30 * 24 * 3600_000)]);
    return this.sweep(this.clock.now());
  }
}
