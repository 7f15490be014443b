import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { Runtime, RUNTIME } from '../config/runtime';
import { ConsentsService } from '../consents/consents.service';
import { ChargeAttemptsService, ClaimedCharge, DueSubscription } from '../ledger/charge-attempts.service';
import { ReservationsService } from '../ledger/reservations.service';
import { SubscriptionEntity } from '../ledger/subscription.entity';
import { dueBefore, SubscriptionEvent } from '../ledger/transitions';
import { PlanEntity } from '../plans/plan.entity';
import { ChargeRunEntity } from './charge-run.entity';
import { chore, RUN_LOG_CONTEXT, RunCounters } from './tasks/run-task';

/**
 * Where a run's claims go on from: the last subscription claimed, in due order. A run walks the due index once
 * instead of stepping again over the rows it charged (whose old index entries stay until vacuum), so a claim costs
 * the same at the end of a long run as at its start. A row the walk passed because another transaction held it (an
 * admin's action, another instance's claim) is looked for once more at the end: when the walk finds nothing, it starts
 * again from the beginning once (`swept`), where rows charged by this run no longer qualify.
 */
export interface ClaimCursor {
  after: { at: Date; id: string } | null;
  swept: boolean;
}

/** The charge run's claims: due subscriptions, claimed in batches, each with its attempt recorded. */
@Injectable()
export class ClaimDueBatch {
  private readonly logger = new Logger(RUN_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly attempts: ChargeAttemptsService,
    private readonly billingKeys: BillingKeysService,
    private readonly reservations: ReservationsService,
    private readonly consents: ConsentsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /**
   * Claims a batch of due subscriptions and records an attempt for each, in one short transaction: one query claims
   * them (row locks, SKIP LOCKED, with their billing keys), one statement records their attempts. Subscriptions set
   * to cancel at period end are ended instead; pending plan changes take effect first (those are rare and take the
   * general path). A trial's end or a plan migration's renewal is charged only with the consent the law requires
   * (전자상거래법 제13조 제6항, see src/consents): without it the subscription ends or pauses (consent_missing) and nothing
   * is charged; a migration switches the plan first (migrate_plan). Their consents are read in one query per batch.
   */
  async claimBatch(
    run: ChargeRunEntity,
    plans: Map<string, PlanEntity>,
    c: RunCounters,
    cursor: ClaimCursor,
    limit: number,
  ): Promise<{ charges: ClaimedCharge[]; claimed: number }> {
    const ended: string[] = [];
    const retire: string[] = [];
    const result = await this.db.transaction(async (m) => {
      const qb = m
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .addSelect('s.xmin::text', 'row_version')
        .addSelect('b.billing_key_ciphertext', 'key_ciphertext')
        .leftJoin('billing_keys', 'b', 'b.id = s.billing_key_id')
        // Due by business day: everything due before the end of the run's business date (see dueBefore).
        .where('s.next_charge_at < :dueBefore', { dueBefore: dueBefore(run.asOf, this.runtime.config.businessTimeZone) })
        .andWhere(`s.status IN ('incomplete', 'trialing', 'active', 'past_due')`)
        // Not while an attempt is open or a reservation covers the period, and once per run at most. One probe of
        // the subscription's payments (by subscription_id), whatever the planner believes about the table's size.
        .andWhere(
          `NOT EXISTS (SELECT 1 FROM payments p WHERE p.subscription_id = s.id
             AND (p.status IN ('IN_PROGRESS', 'UNKNOWN') OR (p.status = 'READY' AND p.period_start <= s.next_charge_at) OR p.charge_run_id = :runId))`,
          { runId: run.id },
        );
      if (cursor.after) qb.andWhere('(s.next_charge_at, s.id) > (:afterAt, :afterId)', { afterAt: cursor.after.at, afterId: cursor.after.id });
      const { entities: subs, raw } = await qb
        .orderBy('s.next_charge_at', 'ASC')
        .addOrderBy('s.id', 'ASC')
        .limit(limit)
        .setLock('pessimistic_write', undefined, ['s'])
        .setOnLocked('skip_locked')
        .getRawAndEntities<{ s_id: string; row_version: string; key_ciphertext: string | null }>();
      const extra = new Map(raw.map((r) => [r.s_id, r]));
      const last = subs[subs.length - 1];
      if (last?.nextChargeAt) cursor.after = { at: last.nextChargeAt, id: last.id };
      const due: DueSubscription[] = [];
      const charges: ClaimedCharge[] = [];
      const planOf = async (id: string): Promise<PlanEntity> => {
        let p = plans.get(id);
        if (!p) {
          p = await m.getRepository(PlanEntity).findOneByOrFail({ id });
          plans.set(p.id, p);
        }
        return p;
      };
      // Consent before a paid conversion or a price increase: what each renewal does, decided for the batch at once.
      const plain = subs.filter((s) => !s.cancelAtPeriodEnd && !s.pendingPlanId);
      for (const s of plain) await planOf(s.planId);
      const decisions = await this.consents.decide(m, plain, (id) => plans.get(id)!.amount);
      const reliedOn = new Map<string, string>();
      for (const claimed of subs) {
        c.due++;
        let sub = claimed;
        let rowVersion: string | null = extra.get(sub.id)?.row_version ?? null;
        const decision = decisions.get(sub.id);
        if (decision && decision.action !== 'charge') {
          const event: SubscriptionEvent =
            decision.action === 'migrate'
              ? { type: 'migrate_plan', planId: decision.toPlanId, migrationId: decision.migrationId, consentId: decision.consentId }
              : { type: 'consent_missing', kind: decision.kind, action: this.runtime.config.consent.missingAction, changeId: decision.changeId };
          const applied = await this.attempts.applyInClaim(m, sub, event);
          if ('refused' in applied) {
            // Never charged without the consent it needs: left as it is (and logged) when the change is refused.
            this.logger.warn({
              message: 'consent decision not applied; not charged',
              subscription_id: sub.id,
              decision: decision.action,
              code: applied.refused,
            });
            c.skipped++;
            continue;
          }
          sub = applied.sub;
          rowVersion = null; // changed in this transaction: its outcome is settled the general way
          if (decision.action === 'migrate') {
            await this.consents.recordMigrationOutcome(m, decision.migrationId, sub.id, 'switched', decision.consentId);
            if (decision.consentId) reliedOn.set(sub.id, decision.consentId);
          } else {
            if (decision.changeId)
              await this.consents.recordMigrationOutcome(m, decision.changeId, sub.id, sub.status === 'paused' ? 'paused' : 'canceled', null);
            if (applied.retireBillingKeyId) retire.push(applied.retireBillingKeyId);
            if (sub.status === 'canceled') c.canceled++;
            else c.skipped++;
            ended.push(sub.id);
            continue;
          }
        } else if (decision?.consentId) reliedOn.set(sub.id, decision.consentId);
        if (sub.cancelAtPeriodEnd || sub.pendingPlanId) {
          // The period ends: a cancel at period end takes effect instead of the charge; a pending plan applies first.
          const applied = await this.attempts.applyInClaim(m, sub, { type: 'period_end' });
          if (!('refused' in applied)) {
            sub = applied.sub;
            rowVersion = null; // changed in this transaction: its outcome is settled the general way
            if (applied.retireBillingKeyId) retire.push(applied.retireBillingKeyId);
            if (sub.status === 'canceled') {
              ended.push(sub.id);
              c.canceled++;
              continue;
            }
          }
        }
        let plan = plans.get(sub.planId);
        if (!plan) {
          plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: sub.planId });
          plans.set(plan.id, plan);
        }
        due.push({ subscription: sub, plan, keyCiphertext: extra.get(sub.id)?.key_ciphertext ?? null, rowVersion, consentId: reliedOn.get(sub.id) ?? null });
      }
      // Each charge records the consent it relied on (a paid conversion, or the first charge at a migrated price).
      const opened = await this.attempts.openBatch(m, due, run.id);
      charges.push(...opened.charges);
      // A period the credit paid entirely is charged (0 won at the card, never sent) and counted so.
      c.charged += opened.paidByCredit;
      // Left out: another instance recorded an attempt for it between our query and our lock; it is theirs.
      c.due -= due.length - charges.length - opened.paidByCredit;
      return { charges, claimed: subs.length };
    });
    // Subscriptions that ended at their period's end: reservations first, then the key (after commit).
    for (const id of ended) await chore('canceling the reservations of an ended subscription', id, () => this.reservations.cancelOutstanding(id));
    for (const id of retire) await this.billingKeys.destroyAtGatewayQuietly(id);
    return result;
  }
}
