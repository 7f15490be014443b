import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, In } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { RefundablePayment, refundSplit } from '../../billing-math';
import { Clock } from '../../common/clock';
import { isUniqueViolation } from '../../common/db-errors';
import { ConflictError, DomainError, FieldError, InvalidInputError, NotFoundError } from '../../common/errors';
import { PaymentEntity } from '../../payments/payment.entity';
import { Runtime, RUNTIME } from '../../config/runtime';
import { MAX_AMOUNT } from '../dto/refund.dto';
import { cancelIdFor, IN_FLIGHT_REFUND_STATUSES, RefundEntity } from '../refund.entity';
import { refundView } from '../refund-view';
import { REFUNDABLE_PAYMENT_STATUSES, REFUNDS_LOG_CONTEXT, RefundInput, refundLeaseMs, RefundView } from './refund-shared';
import { RefundReads } from './refund-reads';
import { ResolveUnknownRefunds } from './resolve-unknown';
import { CancelOutcome, RefundCancelSender } from './send-cancel';
import { RefundSettlement } from './settle-refund';
import { PaymentReceiptSync } from './sync-from-receipt';

const won = (n: number): string => n.toLocaleString('en-US');

/** Requests a refund of (part of) a payment: checked and committed pending, then sent to Bootpay and settled. */
@Injectable()
export class RequestRefundAction {
  private readonly logger = new Logger(REFUNDS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly reads: RefundReads,
    private readonly resolver: ResolveUnknownRefunds,
    private readonly sender: RefundCancelSender,
    private readonly settlement: RefundSettlement,
    private readonly sync: PaymentReceiptSync,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /**
   * Refunds (part of) a payment at Bootpay and answers the refund: `succeeded`, or `unknown` when Bootpay did not
   * answer (resolved later by {@link resolveUnknown}). Throws a 409 when the request does not fit the payment (or
   * Bootpay refused the cancel: the refund is then stored as `failed`), 502/503 for gateway problems.
   */
  async refund(paymentId: string, input: RefundInput, actor: Actor): Promise<RefundView> {
    const checked = checkInput(input);
    await this.reads.paymentOrFail(paymentId);
    // An earlier refund of this payment whose outcome is unknown is resolved first: it may free the payment.
    await this.resolver.resolveUnknown({ paymentId }).catch((err: unknown) => {
      this.logger.warn({ message: 'could not resolve earlier refunds', payment_id: paymentId, error_name: err instanceof Error ? err.name : typeof err });
    });
    const { refund, receiptId } = await this.open(paymentId, checked, actor);
    const outcome = await this.sender.send(refund, receiptId);
    return this.finishFirstSend(refund, receiptId, outcome);
  }

  /** Checks the request against the payment under its row lock and commits the refund as pending. */
  private async open(paymentId: string, input: RefundInput, actor: Actor): Promise<{ refund: RefundEntity; receiptId: string }> {
    try {
      return await this.db.transaction(async (m) => {
        const payment = await m
          .getRepository(PaymentEntity)
          .createQueryBuilder('p')
          .setLock('pessimistic_write')
          .where('p.id = :id', { id: paymentId })
          .getOne();
        if (!payment) throw new NotFoundError('Payment', paymentId);
        if (!REFUNDABLE_PAYMENT_STATUSES.includes(payment.status) || payment.balanceAmount <= 0) {
          throw new ConflictError(
            'payment_not_refundable',
            payment.status === 'CANCELED'
              ? 'The payment is already fully refunded'
              : `Cannot refund a payment in status ${payment.status}; refunds are allowed from: ${REFUNDABLE_PAYMENT_STATUSES.join(', ')}`,
            { payment_status: payment.status, allowed_from: REFUNDABLE_PAYMENT_STATUSES },
          );
        }
        if (!payment.receiptId) {
          throw new ConflictError(
            'payment_receipt_unknown',
            "Bootpay's receipt of this payment is not known yet (it arrives with Bootpay's webhook); try again shortly",
          );
        }
        const inFlight = await m.getRepository(RefundEntity).find({ where: { paymentId, status: In(IN_FLIGHT_REFUND_STATUSES) } });
        if (inFlight.length) {
          const other = inFlight[0];
          throw new ConflictError(
            'refund_in_progress',
            `Refund ${other.id} of this payment is still ${other.status === 'unknown' ? "waiting for Bootpay's answer" : 'being sent'}; try again once it is settled`,
            { refund_id: other.id, refund_status: other.status },
          );
        }
        // The balance left to refund, net of refunds in flight (none can be, past the check above).
        const inFlightAmount = inFlight.reduce((s, r) => s + r.amount, 0);
        const inFlightTaxFree = inFlight.reduce((s, r) => s + r.taxFreeAmount, 0);
        const balance = payment.balanceAmount - inFlightAmount;
        const remainingTaxFree = payment.taxFreeAmount - payment.refundedTaxFree - inFlightTaxFree;
        const remainingTaxable = balance - remainingTaxFree;
        if (remainingTaxFree < 0 || remainingTaxable < 0) {
          throw new ConflictError('payment_inconsistent', "The payment's refunded amounts are inconsistent; reconcile it with Bootpay first");
        }

        const amount = input.amount ?? balance;
        if (amount > balance) {
          throw new ConflictError('refund_exceeds_balance', `The refund of ${won(amount)} won exceeds the payment's remaining balance of ${won(balance)} won`, {
            amount,
            balance_amount: balance,
          });
        }
        // The refund's Korean split (billing-math refundSplit): the VAT is rounded on the payment's refunds together,
        // and the refund that empties the payment takes exactly the tax-free part, VAT and supply amount left.
        const refundedVat = Number(
          (await m.query(`SELECT coalesce(sum(vat), 0)::text AS vat FROM refunds WHERE payment_id = $1 AND status = 'succeeded'`, [payment.id]))[0].vat,
        );
        const refundable: RefundablePayment = {
          amount: payment.amount,
          taxFreeAmount: payment.taxFreeAmount,
          vat: payment.vat,
          balanceAmount: balance,
          refundedTaxFree: payment.taxFreeAmount - remainingTaxFree,
          refundedVat,
        };
        const split = (refundTaxFree?: number) => {
          try {
            return refundSplit(refundable, amount, refundTaxFree);
          } catch (err) {
            if (!(err instanceof RangeError)) throw err;
            throw new ConflictError('payment_inconsistent', "The payment's refunded amounts are inconsistent; reconcile it with Bootpay first");
          }
        };
        const taxFree = input.taxFreeAmount ?? split().taxFree;
        if (taxFree > remainingTaxFree) {
          throw new ConflictError(
            'refund_tax_free_exceeds_remaining',
            `The tax-free part of ${won(taxFree)} won exceeds the payment's remaining tax-free amount of ${won(remainingTaxFree)} won`,
            { tax_free_amount: taxFree, remaining_tax_free_amount: remainingTaxFree },
          );
        }
        if (amount - taxFree > remainingTaxable) {
          throw new ConflictError(
            'refund_taxable_exceeds_remaining',
            `The taxable part of ${won(amount - taxFree)} won exceeds the payment's remaining taxable amount of ${won(remainingTaxable)} won` +
              (input.amount === undefined ? ' (a full refund returns all the remaining tax-free amount)' : ''),
            { taxable_amount: amount - taxFree, remaining_taxable_amount: remainingTaxable },
          );
        }

        const now = this.clock.now();
        const id = randomUUID();
        const repo = m.getRepository(RefundEntity);
        const refund = repo.create({
          id,
          paymentId: payment.id,
          subscriptionId: payment.subscriptionId,
          amount,
          taxFreeAmount: taxFree,
          vat: split(taxFree).vat,
          reason: input.reason,
          status: 'pending',
          cancelId: cancelIdFor(id),
          failureCode: null,
          failurePgCode: null,
          failureMessage: null,
          requestedByApiKeyId: actor.apiKeyId,
          requestedByName: actor.name.slice(0, 100),
          attempts: 1,
          lastAttemptAt: now,
          lockedUntil: new Date(now.getTime() + refundLeaseMs(this.runtime)),
          createdAt: now,
          updatedAt: now,
          completedAt: null,
        });
        await repo.insert(refund);
        return { refund, receiptId: payment.receiptId };
      });
    } catch (err) {
      if (isUniqueViolation(err, 'refunds_one_in_flight')) {
        throw new ConflictError('refund_in_progress', 'Another refund of this payment is in flight; try again once it is settled');
      }
      throw err;
    }
  }

  /** The outcome of a refund's first send, as the API answers it. */
  private async finishFirstSend(refund: RefundEntity, receiptId: string, outcome: CancelOutcome): Promise<RefundView> {
    switch (outcome.kind) {
      case 'succeeded':
        try {
          return refundView(await this.settlement.settleSucceeded(refund.id, outcome.receipt, { resolved: outcome.duplicate }));
        } catch (err) {
          // Bootpay cancelled but it could not be recorded: left for resolveUnknown (the same cancel_id again).
          this.logger.error({
            message: 'refund cancelled at Bootpay but not recorded; left unknown',
            refund_id: refund.id,
            error_name: err instanceof Error ? err.name : typeof err,
            error_message: err instanceof Error ? err.message : undefined,
          });
          return refundView(await this.settlement.markUnknown(refund.id));
        }
      case 'unknown':
        this.logger.warn({ message: 'refund outcome unknown; resolved later with the same cancel_id', refund_id: refund.id, reason: outcome.reason });
        return refundView(await this.settlement.markUnknown(refund.id));
      case 'not_sent':
      case 'refused': {
        const failed = await this.settlement.markFailed(refund.id, outcome.failure);
        // After it is failed (no longer in flight), so a cancellation made at Bootpay is recorded as its own.
        if (outcome.kind === 'refused' && !outcome.gatewaySide) await this.sync.syncPaymentQuietly(refund.paymentId, receiptId, outcome.failure.code);
        if (failed.status === 'succeeded') return refundView(failed); // settled meanwhile by a resolver
        const extra = { refund: refundView(failed), failure: outcome.failure };
        if (outcome.kind === 'not_sent' && outcome.unavailable) {
          throw new DomainError(
            'gateway_unavailable',
            'gateway_unavailable',
            'Bootpay could not be reached; nothing was refunded, try again shortly',
            [],
            extra,
          );
        }
        if (outcome.kind === 'not_sent' || outcome.gatewaySide) {
          throw new DomainError(
            'gateway_error',
            'refund_gateway_error',
            `Bootpay did not process the refund (${outcome.failure.code}); nothing was refunded`,
            [],
            extra,
          );
        }
        throw new ConflictError('refund_refused', `Bootpay refused the refund (${outcome.failure.code}): ${outcome.failure.message}`, extra);
      }
    }
  }
}

/** The checks of the API's DTO, for callers in code (a cancel with refund_unused). */
function checkInput(input: RefundInput): RefundInput {
  const details: FieldError[] = [];
  const { amount, taxFreeAmount, reason } = input ?? ({} as RefundInput);
  if (amount !== undefined && (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1 || amount > MAX_AMOUNT)) {
    details.push({ field: 'amount', message: `amount must be a whole number of won from 1 to ${MAX_AMOUNT}` });
  }
  if (
    taxFreeAmount !== undefined &&
    (typeof taxFreeAmount !== 'number' || !Number.isSafeInteger(taxFreeAmount) || taxFreeAmount < 0 || taxFreeAmount > MAX_AMOUNT)
  ) {
    details.push({ field: 'tax_free_amount', message: `tax_free_amount must be a whole number of won from 0 to ${MAX_AMOUNT}` });
  }
  // eslint-disable-next-line no-control-regex
  if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 500 || /[\u0000-\u001f\u007f]/.test(reason)) {
    details.push({ field: 'reason', message: 'reason must be non-blank text of at most 500 characters without control characters' });
  }
  if (!details.length && amount !== undefined && taxFreeAmount !== undefined && taxFreeAmount > amount) {
    details.push({ field: 'tax_free_amount', message: 'tax_free_amount must not exceed amount' });
  }
  if (details.length) throw new InvalidInputError(details, details.map((d) => d.message).join('; '));
  return { amount, taxFreeAmount, reason };
}
