import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { refundSplit } from '../../billing-math';
import { Clock } from '../../common/clock';
import { returnedRows } from '../../common/db-errors';
import { PaymentEntity } from '../../payments/payment.entity';
import { EventActor } from '../subscription-events.service';
import { cancelIdFor, RefundEntity } from '../refund.entity';

/** Records a refund the service owes, in the caller's transaction, for resolveUnknown to send. */
@Injectable()
export class RecordOwedRefund {
  constructor(private readonly clock: Clock) {}

  /**
   * Records a refund the service owes (money that moved and is not owed: an approval the subscription refused, the
   * unused part of a cancel), in the caller's transaction, as `pending` with no lease: {@link resolveUnknown} sends it
   * (at once when the caller asks, else at the next charge run) with its own cancel_id, and keeps trying until
   * Bootpay answers. False when it could not be recorded because another refund of the payment is in flight.
   */
  async recordOwed(
    m: EntityManager,
    payment: Pick<PaymentEntity, 'id' | 'subscriptionId' | 'amount' | 'taxFreeAmount' | 'vat' | 'balanceAmount' | 'refundedTaxFree'>,
    owed: { amount: number; taxFreeAmount: number; reason: string },
    actor: EventActor = 'system',
  ): Promise<RefundEntity | null> {
    const amount = Math.min(owed.amount, payment.balanceAmount);
    if (amount <= 0) return null;
    // The Korean split as every refund of the payment takes it: VAT rounded over its refunds together (refundSplit).
    const [{ vat: refundedVat }] = await m.query(`SELECT COALESCE(sum(vat), 0)::bigint AS vat FROM refunds WHERE payment_id = $1 AND status = 'succeeded'`, [
      payment.id,
    ]);
    const split = refundSplit(
      {
        amount: payment.amount,
        taxFreeAmount: payment.taxFreeAmount,
        vat: payment.vat,
        balanceAmount: payment.balanceAmount,
        refundedTaxFree: payment.refundedTaxFree,
        refundedVat: Number(refundedVat),
      },
      amount,
      Math.min(owed.taxFreeAmount, payment.taxFreeAmount - payment.refundedTaxFree, amount),
    );
    const taxFree = split.taxFree;
    const now = this.clock.now();
    const id = randomUUID();
    const refund = m.getRepository(RefundEntity).create({
      id,
      paymentId: payment.id,
      subscriptionId: payment.subscriptionId,
      amount,
      taxFreeAmount: taxFree,
      vat: split.vat,
      reason: owed.reason.slice(0, 500),
      status: 'pending',
      cancelId: cancelIdFor(id),
      failureCode: null,
      failurePgCode: null,
      failureMessage: null,
      requestedByApiKeyId: actor === 'system' ? null : actor.apiKeyId,
      requestedByName: actor === 'system' ? 'system' : actor.name.slice(0, 100),
      attempts: 1,
      lastAttemptAt: now,
      lockedUntil: null,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    });
    const inserted = returnedRows<{ id: string }>(
      await m.query(
        `INSERT INTO refunds (id, payment_id, subscription_id, amount, tax_free_amount, vat, reason, status, cancel_id, requested_by_api_key_id,
           requested_by_name, attempts, last_attempt_at, locked_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, 1, $11, NULL, $11, $11) ON CONFLICT DO NOTHING RETURNING id`,
        [
          id,
          refund.paymentId,
          refund.subscriptionId,
          refund.amount,
          refund.taxFreeAmount,
          refund.vat,
          refund.reason,
          refund.cancelId,
          refund.requestedByApiKeyId,
          refund.requestedByName,
          now,
        ],
      ),
    );
    return inserted.length ? refund : null;
  }
}
