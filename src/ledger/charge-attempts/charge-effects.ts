import { Injectable, Logger } from '@nestjs/common';
import { BillingKeysService } from '../../billing-keys/billing-keys.service';
import { RefundsService } from '../refunds.service';
import { ReservationsService } from '../reservations.service';
import { Effect } from '../transitions';
import { CHARGE_ATTEMPTS_LOG_CONTEXT, SettleResult } from './attempt-shared';

/** Carries out what a committed charge or subscription change leaves to do: reservations, owed refunds, key deletion. */
@Injectable()
export class ChargeEffects {
  private readonly logger = new Logger(CHARGE_ATTEMPTS_LOG_CONTEXT);

  constructor(
    private readonly billingKeys: BillingKeysService,
    private readonly reservations: ReservationsService,
    private readonly refunds: RefundsService,
  ) {}

  /** What follows a settled charge, after commit: the transition's effects (see {@link runEffects}). */
  async afterSettle(result: Pick<SettleResult, 'subscription' | 'effects' | 'retireBillingKeyId'>): Promise<void> {
    await this.runEffects(result.subscription.id, result.effects, result.retireBillingKeyId);
  }

  /**
   * Carries out a transition's effects after its commit. Each is safe to repeat and is retried by the charge run
   * when it fails here (leftover reservations, pending key deletions, owed refunds, reservation top-ups), so a
   * failure is logged with its context and does not undo the committed change. Reservations are canceled before a
   * billing key is deleted (deleting a key at Bootpay does not cancel its reservations).
   */
  async runEffects(subscriptionId: string, effects: Effect[], retireBillingKeyId?: string): Promise<void> {
    const attempt = async (what: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        this.logger.warn({
          message: `${what} failed after commit; the charge run retries it`,
          subscription_id: subscriptionId,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    };
    if (effects.some((e) => e.kind === 'cancel_reservations'))
      await attempt('canceling reservations', () => this.reservations.cancelOutstanding(subscriptionId));
    for (const e of effects) {
      if (e.kind === 'refund_payment') await attempt('an owed refund', () => this.refunds.resolveUnknown({ paymentId: e.paymentId }));
    }
    if (effects.some((e) => e.kind === 'top_up_reservations')) await attempt('registering reservations', () => this.reservations.topUp(subscriptionId));
    if (retireBillingKeyId) await this.billingKeys.destroyAtGatewayQuietly(retireBillingKeyId);
  }
}
