import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { ChargeAttemptsService } from '../charge-attempts.service';
import { ALLOWED_FROM } from '../transitions';
import { ReservationsService } from '../reservations.service';
import { DomainError } from '../../common/errors';
import { PlanEntity } from '../../plans/plan.entity';
import { SubscriptionResponseDto, SwapBillingKeyDto } from '../dto/subscription.dto';
import { SubscriptionWriter } from './subscription-writer';

/** Moves a subscription to another card of its customer; a past_due one is charged at once with it. */
@Injectable()
export class SwapBillingKeyAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly charges: ChargeAttemptsService,
    private readonly reservations: ReservationsService,
    private readonly w: SubscriptionWriter,
  ) {}

  async swapBillingKey(id: string, dto: SwapBillingKeyDto, actor: Actor): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const done = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      const [key] = await m.query(`SELECT customer_id, status FROM billing_keys WHERE id = $1 FOR SHARE`, [dto.billing_key_id]);
      const err = !key
        ? 'no billing key has this id'
        : key.customer_id !== sub.customerId
          ? 'the billing key belongs to another customer'
          : key.status !== 'active'
            ? 'the billing key is deleted'
            : null;
      if (err && ALLOWED_FROM.swap_billing_key.includes(sub.status as never)) {
        throw new DomainError('unprocessable', 'invalid_reference', `billing_key_id: ${err}`, [{ field: 'billing_key_id', message: err }]);
      }
      await this.w.assertNoOpenAttempt(m, sub);
      const applied = await this.w.apply(m, sub, { type: 'swap_billing_key', billingKeyId: dto.billing_key_id }, actor, { reason: dto.reason });
      if (!applied.effects.some((e) => e.kind === 'charge_now')) return { ...applied, payment: null };
      // past_due: the outstanding period is charged at once with the new key.
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: applied.sub.planId });
      return { ...applied, payment: await this.charges.open(m, applied.sub, plan) };
    });
    await this.charges.runEffects(id, done.effects);
    if (done.payment) await this.w.sendAndSettle(done.payment, { actor, onDecline: 'dunning' });
    await this.reservations.topUp(id);
    return this.w.get(id);
  }
}
