import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { Clock, isSupportedInstant } from '../../common/clock';
import { returnedRows } from '../../common/db-errors';
import { ConflictError, DomainError, FieldError, InvalidInputError, NotFoundError } from '../../common/errors';
import { SubscriptionEventsService } from '../../ledger/subscription-events.service';
import { CONSENT_PAUSE_REASON } from '../../ledger/transitions';
import { migrationChangeAt } from '../consent-rules';
import { RecordConsentDto } from '../dto/consent.dto';
import { CLOCK_SKEW_MS, ConsentRow, ConsentStore } from './consent-store';

/**
 * Records a consent to a paid conversion or a price increase (전자상거래법 제13조 제6항), and withdraws one; each audited
 * in the subscription's trail, in a transaction holding the subscription's row lock.
 */
@Injectable()
export class RecordConsentAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly events: SubscriptionEventsService,
    private readonly store: ConsentStore,
  ) {}

  async record(subscriptionId: string, dto: RecordConsentDto, actor: Actor) {
    const now = this.clock.now();
    const obtainedAt = new Date(dto.obtained_at);
    const errors: FieldError[] = [];
    if (!isSupportedInstant(obtainedAt)) errors.push({ field: 'obtained_at', message: 'obtained_at must be a valid date-time from 1970 on' });
    else if (obtainedAt.getTime() > now.getTime() + CLOCK_SKEW_MS) errors.push({ field: 'obtained_at', message: 'obtained_at must not be in the future' });
    if (dto.kind === 'price_increase' && !dto.change_id)
      errors.push({ field: 'change_id', message: 'change_id (the plan migration) is required for a price_increase consent' });
    if (dto.kind === 'trial_conversion' && dto.change_id !== undefined)
      errors.push({ field: 'change_id', message: 'change_id goes with a price_increase consent only' });
    if (errors.length) throw new InvalidInputError(errors, errors[0].message);

    return this.db.transaction(async (m) => {
      const sub = await this.store.lock(m, subscriptionId);
      let change: { changeAt: Date; planBefore: string | null; planAfter: string; amountBefore: number; amountAfter: number };
      if (dto.kind === 'trial_conversion') {
        // A trial, or a subscription paused at its trial's end for want of this consent (its conversion is the resume).
        const pausedForConsent = sub.status === 'paused' && sub.pauseReason === CONSENT_PAUSE_REASON;
        if (!pausedForConsent && (sub.status !== 'trialing' || !sub.nextChargeAt)) {
          throw new ConflictError('no_paid_conversion', `A ${sub.status} subscription has no paid conversion to consent to; allowed from: trialing`, {
            current_status: sub.status,
          });
        }
        const plan = await this.store.terms(sub.planId, m);
        const changeAt = pausedForConsent ? this.clock.now() : sub.nextChargeAt!;
        change = { changeAt, planBefore: sub.planId, planAfter: sub.planId, amountBefore: 0, amountAfter: plan.amount };
      } else {
        const migration = await this.store.migrationRow(m, dto.change_id!);
        if (!migration || migration.from_plan_id !== sub.planId) {
          const message = !migration ? 'no plan migration has this id' : 'the subscription is not on the plan this migration moves';
          throw new DomainError('unprocessable', 'invalid_reference', `change_id: ${message}`, [{ field: 'change_id', message }]);
        }
        if (sub.status === 'canceled')
          throw new ConflictError('no_price_increase', 'A canceled subscription has no price increase to consent to', { current_status: sub.status });
        const from = await this.store.terms(sub.planId, m);
        const changeAt = migrationChangeAt(sub, from, migration.effective_at, this.store.tz);
        change = { changeAt, planBefore: sub.planId, planAfter: migration.to_plan_id, amountBefore: from.amount, amountAfter: Number(migration.to_amount) };
      }
      const [key] = await m.query(`SELECT card_company, card_no_masked FROM billing_keys WHERE id = $1`, [sub.billingKeyId]);
      const [row] = (await m.query(
        `INSERT INTO consents (subscription_id, kind, change_id, change_at, plan_id_before, plan_id_after, amount_before, amount_after, billing_key_id,
           card_company, card_no_masked, obtained_at, channel, evidence, recorded_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *`,
        [
          sub.id,
          dto.kind,
          dto.change_id ?? null,
          change.changeAt,
          change.planBefore,
          change.planAfter,
          change.amountBefore,
          change.amountAfter,
          sub.billingKeyId,
          key?.card_company ?? null,
          key?.card_no_masked ?? null,
          obtainedAt,
          dto.channel,
          dto.evidence,
          actor.name.slice(0, 100),
          now,
        ],
      )) as ConsentRow[];
      const view = this.store.view(row);
      await this.events.record(m, sub, 'subscription.consent_recorded', actor, {
        data: {
          consent_id: row.id,
          kind: row.kind,
          change_id: row.change_id,
          change_at: view.change_at,
          obtained_at: view.obtained_at,
          price_before: view.price_before,
          price_after: view.price_after,
          status: view.status,
        },
      });
      return view;
    });
  }

  async withdraw(subscriptionId: string, consentId: string, reason: string | undefined, actor: Actor) {
    return this.db.transaction(async (m) => {
      const sub = await this.store.lock(m, subscriptionId);
      const [row] = (await m.query(`SELECT * FROM consents WHERE id = $1 AND subscription_id = $2 FOR UPDATE`, [consentId, sub.id])) as ConsentRow[];
      if (!row) throw new NotFoundError('Consent', consentId);
      if (row.withdrawn_at) throw new ConflictError('consent_already_withdrawn', `Consent ${consentId} was already withdrawn`);
      const now = this.clock.now();
      const [after] = returnedRows<ConsentRow>(
        await m.query(`UPDATE consents SET withdrawn_at = $2, withdraw_reason = $3 WHERE id = $1 RETURNING *`, [row.id, now, reason?.slice(0, 500) ?? null]),
      );
      await this.events.record(m, sub, 'subscription.consent_withdrawn', actor, {
        reason: reason ?? null,
        data: { consent_id: row.id, kind: row.kind, change_id: row.change_id },
      });
      return this.store.view(after);
    });
  }
}
