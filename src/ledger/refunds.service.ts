import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { RefundablePayment, refundSplit } from '../billing-math';
import { Clock } from '../common/clock';
import { isUniqueViolation, returnedRows } from '../common/db-errors';
import { ConflictError, DomainError, FieldError, InvalidInputError, NotFoundError } from '../common/errors';
import { Page, paginate, PageQueryDto } from '../common/pagination';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import {
  GatewayAlreadyCancelledError,
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayRequestError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
} from '../gateway/gateway.errors';
import type { GatewayReceipt } from '../gateway/gateway.types';
import { PaymentEntity, PaymentStatus } from '../payments/payment.entity';
import { Runtime, RUNTIME } from '../config/runtime';
import { EventActor, SubscriptionEventsService } from './subscription-events.service';
import { SubscriptionEntity } from './subscription.entity';
import { MAX_AMOUNT, RefundResponseDto } from './dto/refund.dto';
import { cancelIdFor, IN_FLIGHT_REFUND_STATUSES, RefundEntity } from './refund.entity';
import { refundView } from './refund-view';
import { FinanceFlagsService } from './finance-flags.service';

export type RefundView = RefundResponseDto;

export interface RefundInput {
  /** Whole won; omitted: the whole remaining balance. */
  amount?: number;
  /** Tax-free part; omitted: proportional (all the remaining tax-free part for a full refund). */
  taxFreeAmount?: number;
  reason: string;
}

export interface ResolveUnknownSummary {
  /** Refunds taken up (unknown ones, and pending ones whose sender went away). */
  examined: number;
  succeeded: number;
  failed: number;
  /** Still without an answer: tried again at the next call. */
  unknown: number;
}

/** Only settled, not fully refunded payments can be refunded. */
export const REFUNDABLE_PAYMENT_STATUSES: PaymentStatus[] = ['DONE', 'PARTIAL_CANCELED'];

interface RefundFailure {
  code: string;
  pg_code: string | null;
  message: string;
}

/**
 * What Bootpay said about one cancel request.
 * - succeeded: cancelled (its receipt, with Bootpay's cumulative figures), or refused as a duplicate cancel_id (the
 *   same cancel went through before) and the receipt fetched;
 * - unknown: sent, no usable answer;
 * - not_sent: Bootpay never processed it (unreachable before sending, credentials, the gateway's own checks);
 * - refused: Bootpay processed and refused the cancel itself (`gatewaySide`: for reasons of ours or Bootpay's,
 *   not of the refund).
 */
type CancelOutcome =
  | { kind: 'succeeded'; receipt: GatewayReceipt; duplicate: boolean }
  | { kind: 'unknown'; reason: string }
  | { kind: 'not_sent'; failure: RefundFailure; unavailable: boolean }
  | { kind: 'refused'; failure: RefundFailure; gatewaySide: boolean };

const won = (n: number): string => n.toLocaleString('en-US');

/**
 * Refunds (Bootpay cancels) of payments. Never twice, never lost:
 * 1. under the payment's row lock the request is checked against the remaining balance and tax-free amount, and the
 *    refund is committed `pending` with its deterministic cancel_id BEFORE Bootpay is called (one refund in flight
 *    per payment, also enforced by a unique index);
 * 2. Bootpay's answer settles it: the payment's balance and refunded tax-free amount are SET from the receipt's
 *    cumulative figures (never added to), the refund succeeds and `refund.succeeded` is audited, in one transaction;
 * 3. no answer leaves it `unknown`; {@link RefundsService.resolveUnknown} re-sends the same cancel_id: Bootpay
 *    refuses a cancel_id it already processed (RC_CANCEL_ID_DUPLICATED), which settles it as succeeded from the
 *    receipt; if the first never arrived, the re-send is the cancel. Either way Bootpay cancels at most once.
 */
@Injectable()
export class RefundsService {
  private readonly logger = new Logger(RefundsService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly events: SubscriptionEventsService,
    private readonly flags: FinanceFlagsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /**
   * How long a sender holds a refund: past it (the sender crashed or hangs), resolveUnknown takes a pending refund
   * over and re-sends its cancel_id. Longer than a cancel plus a receipt lookup can take.
   */
  private leaseMs(): number {
    return Math.max(60_000, 2 * this.runtime.gateway.chargeTimeoutMs + this.runtime.gateway.timeoutMs);
  }

  // ------------------------------------------------------------------------------------------------------ queries

  async list(paymentId: string, q: PageQueryDto): Promise<Page<RefundView>> {
    await this.paymentOrFail(paymentId);
    const qb = this.db.getRepository(RefundEntity).createQueryBuilder('r').where('r.payment_id = :p', { p: paymentId });
    return paginate(qb, q, refundView, 'r');
  }

  async get(refundId: string): Promise<RefundView> {
    const r = await this.db.getRepository(RefundEntity).findOneBy({ id: refundId });
    if (!r) throw new NotFoundError('Refund', refundId);
    return refundView(r);
  }

  private async paymentOrFail(paymentId: string): Promise<void> {
    const exists = await this.db.getRepository(PaymentEntity).exists({ where: { id: paymentId } });
    if (!exists) throw new NotFoundError('Payment', paymentId);
  }

  // ------------------------------------------------------------------------------------------------------- refund

  /**
   * Refunds (part of) a payment at Bootpay and answers the refund: `succeeded`, or `unknown` when Bootpay did not
   * answer (resolved later by {@link resolveUnknown}). Throws a 409 when the request does not fit the payment (or
   * Bootpay refused the cancel: the refund is then stored as `failed`), 502/503 for gateway problems.
   */
  async refund(paymentId: string, input: RefundInput, actor: Actor): Promise<RefundView> {
    const checked = checkInput(input);
    await this.paymentOrFail(paymentId);
    // An earlier refund of this payment whose outcome is unknown is resolved first: it may free the payment.
    await this.resolveUnknown({ paymentId }).catch((err: unknown) => {
      this.logger.warn({ message: 'could not resolve earlier refunds', payment_id: paymentId, error_name: err instanceof Error ? err.name : typeof err });
    });
    const { refund, receiptId } = await this.open(paymentId, checked, actor);
    const outcome = await this.send(refund, receiptId);
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
          lockedUntil: new Date(now.getTime() + this.leaseMs()),
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

  /** Sends the refund's cancel (always the same cancel_id and amounts) and classifies Bootpay's answer. */
  private async send(refund: RefundEntity, receiptId: string): Promise<CancelOutcome> {
    try {
      const receipt = await this.gateway.cancelPayment({
        receiptId,
        cancelPrice: refund.amount,
        cancelTaxFree: refund.taxFreeAmount,
        cancelId: refund.cancelId,
        username: refund.requestedByName,
        message: refund.reason,
      });
      return { kind: 'succeeded', receipt, duplicate: false };
    } catch (err) {
      if (err instanceof GatewayDuplicateError) {
        // This cancel_id was processed before: the refund went through. Bootpay's receipt has the figures.
        try {
          return { kind: 'succeeded', receipt: await this.gateway.getReceipt(receiptId), duplicate: true };
        } catch {
          return { kind: 'unknown', reason: 'cancel_id already processed; the receipt could not be fetched' };
        }
      }
      if (err instanceof GatewayUnknownOutcomeError) return { kind: 'unknown', reason: err.reason };
      if (err instanceof GatewayUnavailableError) return { kind: 'not_sent', failure: failureOf(err), unavailable: true };
      if (err instanceof GatewayConfigError) return { kind: 'not_sent', failure: failureOf(err), unavailable: false };
      if (err instanceof GatewayError) {
        if (err.code === 'INVALID_ARGUMENT') return { kind: 'not_sent', failure: failureOf(err), unavailable: false };
        const refusalOfTheCancel =
          err instanceof GatewayAlreadyCancelledError ||
          err instanceof GatewayDeclinedError ||
          err instanceof GatewayNotFoundError ||
          err instanceof GatewayInvalidBillingKeyError ||
          (err instanceof GatewayRequestError && err.code !== 'RC_CANCEL_SERVER_ERROR');
        return { kind: 'refused', failure: failureOf(err), gatewaySide: !refusalOfTheCancel };
      }
      // Anything unexpected once the request may have left: unknown, never a refusal.
      this.logger.error({ message: 'unexpected error while refunding', refund_id: refund.id, error_name: err instanceof Error ? err.name : typeof err });
      return { kind: 'unknown', reason: 'unexpected_error' };
    }
  }

  /** The outcome of a refund's first send, as the API answers it. */
  private async finishFirstSend(refund: RefundEntity, receiptId: string, outcome: CancelOutcome): Promise<RefundView> {
    switch (outcome.kind) {
      case 'succeeded':
        try {
          return refundView(await this.settleSucceeded(refund.id, outcome.receipt, { resolved: outcome.duplicate }));
        } catch (err) {
          // Bootpay cancelled but it could not be recorded: left for resolveUnknown (the same cancel_id again).
          this.logger.error({
            message: 'refund cancelled at Bootpay but not recorded; left unknown',
            refund_id: refund.id,
            error_name: err instanceof Error ? err.name : typeof err,
            error_message: err instanceof Error ? err.message : undefined,
          });
          return refundView(await this.markUnknown(refund.id));
        }
      case 'unknown':
        this.logger.warn({ message: 'refund outcome unknown; resolved later with the same cancel_id', refund_id: refund.id, reason: outcome.reason });
        return refundView(await this.markUnknown(refund.id));
      case 'not_sent':
      case 'refused': {
        const failed = await this.markFailed(refund.id, outcome.failure);
        // After it is failed (no longer in flight), so a cancellation made at Bootpay is recorded as its own.
        if (outcome.kind === 'refused' && !outcome.gatewaySide) await this.syncPaymentQuietly(refund.paymentId, receiptId, outcome.failure.code);
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

  // ------------------------------------------------------------------------------------------- unknown outcomes

  /**
   * Resolves refunds whose outcome is unknown (and pending ones whose sender went away: crash, lease expired) by
   * re-sending the SAME cancel_id: Bootpay refuses a cancel_id it already processed, so this never cancels twice.
   * Each refund is taken under a lease, so concurrent resolvers (charge runs, refund requests) do not overlap.
   * Meant for the charge run and called at the start of each refund request for that payment.
   */
  async resolveUnknown(opts: { paymentId?: string; limit?: number } = {}): Promise<ResolveUnknownSummary> {
    const summary: ResolveUnknownSummary = { examined: 0, succeeded: 0, failed: 0, unknown: 0 };
    const now = this.clock.now();
    const claimed = returnedRows<{ id: string }>(
      await this.db.query(
        `UPDATE refunds SET locked_until = $1, attempts = attempts + 1, last_attempt_at = $2, updated_at = $2
         WHERE id IN (
           SELECT id FROM refunds
           WHERE status IN ('pending', 'unknown') AND (locked_until IS NULL OR locked_until < $2)
             AND ($3::uuid IS NULL OR payment_id = $3::uuid)
           ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [new Date(now.getTime() + this.leaseMs()), now, opts.paymentId ?? null, opts.limit ?? 100],
      ),
    );
    for (const { id } of claimed) {
      summary.examined += 1;
      try {
        const status = await this.resolveOne(id);
        summary[status] += 1;
      } catch (err) {
        summary.unknown += 1;
        this.logger.error({
          message: 'could not resolve a refund',
          refund_id: id,
          error_name: err instanceof Error ? err.name : typeof err,
          error_message: err instanceof Error ? err.message : undefined,
        });
      }
    }
    if (summary.examined) this.logger.log({ message: 'refunds resolved', ...summary });
    return summary;
  }

  private async resolveOne(refundId: string): Promise<'succeeded' | 'failed' | 'unknown'> {
    const refund = await this.db.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
    const payment = await this.db.getRepository(PaymentEntity).findOneByOrFail({ id: refund.paymentId });
    if (!payment.receiptId) {
      await this.markUnknown(refund.id);
      return 'unknown';
    }
    const outcome = await this.send(refund, payment.receiptId);
    switch (outcome.kind) {
      case 'succeeded':
        return (await this.settleSucceeded(refund.id, outcome.receipt, { resolved: true })).status === 'succeeded' ? 'succeeded' : 'unknown';
      case 'unknown':
      case 'not_sent':
        // Nothing learnt (this time nothing was sent, but the first send may have gone through): ask again later.
        await this.markUnknown(refund.id);
        return 'unknown';
      case 'refused': {
        if (outcome.gatewaySide) {
          await this.markUnknown(refund.id);
          return 'unknown';
        }
        // Bootpay checks a repeated cancel_id first (the fake does; Bootpay documents cancel_id for this), so a
        // refusal means the first send never went through. In case Bootpay checked the amount first, the receipt
        // decides: does Bootpay show this refund cancelled on top of the ones that succeeded here?
        let receipt: GatewayReceipt;
        try {
          receipt = await this.gateway.getReceipt(payment.receiptId);
        } catch {
          await this.markUnknown(refund.id);
          return 'unknown';
        }
        const [{ sum }] = await this.db.query(`SELECT COALESCE(sum(amount), 0)::bigint AS sum FROM refunds WHERE payment_id = $1 AND status = 'succeeded'`, [
          refund.paymentId,
        ]);
        if (receipt.cancelledPrice >= Number(sum) + refund.amount) {
          this.logger.warn({
            message: 'refund re-send refused, but Bootpay shows it cancelled: settled as succeeded',
            refund_id: refund.id,
            code: outcome.failure.code,
          });
          return (await this.settleSucceeded(refund.id, receipt, { resolved: true })).status === 'succeeded' ? 'succeeded' : 'unknown';
        }
        const failed = (await this.markFailed(refund.id, outcome.failure)).status === 'failed' ? 'failed' : 'unknown';
        await this.syncPayment(refund.paymentId, receipt);
        return failed;
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ settlement

  /**
   * Records a refund Bootpay cancelled. The payment's balance and refunded tax-free amount are set from the
   * receipt's cumulative figures (never added to, never moved backwards), so a webhook that got there first, or a
   * repeated settle, changes nothing twice. Idempotent: a refund no longer in flight is left alone.
   */
  private async settleSucceeded(refundId: string, receipt: GatewayReceipt, opts: { resolved: boolean }): Promise<RefundEntity> {
    return this.db.transaction(async (m) => {
      // Lock order everywhere: subscription, payment, refund (as charge settlement does).
      const pre = await m.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
      const sub = await this.lockSubscription(m, pre.subscriptionId);
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: pre.paymentId })
        .getOneOrFail();
      const refund = await this.lockRefund(m, refundId);
      if (!IN_FLIGHT_REFUND_STATUSES.includes(refund.status)) return refund;
      if (receipt.receiptId !== payment.receiptId || receipt.cancelledPrice > payment.amount || receipt.cancelledTaxFree > payment.taxFreeAmount) {
        throw new Error(`Bootpay's receipt does not fit payment ${payment.id}; the refund stays unresolved`);
      }
      const now = this.clock.now();
      if (receipt.cancelledPrice >= payment.amount - payment.balanceAmount) {
        payment.balanceAmount = payment.amount - receipt.cancelledPrice;
        payment.refundedTaxFree = receipt.cancelledTaxFree;
        payment.status = payment.balanceAmount === 0 ? 'CANCELED' : 'PARTIAL_CANCELED';
        payment.canceledAt = receipt.cancelledAt ?? now;
        payment.updatedAt = now;
        await m.getRepository(PaymentEntity).update(
          { id: payment.id },
          {
            balanceAmount: payment.balanceAmount,
            refundedTaxFree: payment.refundedTaxFree,
            status: payment.status,
            canceledAt: payment.canceledAt,
            updatedAt: now,
          },
        );
      } else {
        this.logger.warn({
          message: "Bootpay's receipt shows less cancelled than recorded; payment left as it is",
          payment_id: payment.id,
          refund_id: refund.id,
        });
      }
      Object.assign(refund, {
        status: 'succeeded',
        completedAt: now,
        lockedUntil: null,
        updatedAt: now,
        failureCode: null,
        failurePgCode: null,
        failureMessage: null,
      });
      await m
        .getRepository(RefundEntity)
        .update(
          { id: refund.id },
          { status: 'succeeded', completedAt: now, lockedUntil: null, updatedAt: now, failureCode: null, failurePgCode: null, failureMessage: null },
        );
      await this.events.record(m, sub, 'refund.succeeded', actorOf(refund), {
        reason: refund.reason,
        data: {
          refund_id: refund.id,
          payment_id: payment.id,
          amount: refund.amount,
          tax_free_amount: refund.taxFreeAmount,
          vat: refund.vat,
          cancel_id: refund.cancelId,
          payment_balance_amount: payment.balanceAmount,
          payment_status: payment.status,
          resolved_later: opts.resolved,
        },
        object: { ...refundView(refund) },
      });
      return refund;
    });
  }

  /** No answer (yet): the refund waits for resolveUnknown, which may take it at once (the lease is released). */
  private async markUnknown(refundId: string): Promise<RefundEntity> {
    const now = this.clock.now();
    await this.db.query(`UPDATE refunds SET status = 'unknown', locked_until = NULL, updated_at = $2 WHERE id = $1 AND status IN ('pending', 'unknown')`, [
      refundId,
      now,
    ]);
    return this.db.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
  }

  /** Bootpay did not cancel: the refund fails (audited), the payment is unchanged. */
  private async markFailed(refundId: string, failure: RefundFailure): Promise<RefundEntity> {
    return this.db.transaction(async (m) => {
      const pre = await m.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
      const sub = await this.lockSubscription(m, pre.subscriptionId);
      const refund = await this.lockRefund(m, refundId);
      if (!IN_FLIGHT_REFUND_STATUSES.includes(refund.status)) return refund;
      const now = this.clock.now();
      const patch = {
        status: 'failed' as const,
        failureCode: failure.code.slice(0, 64),
        failurePgCode: failure.pg_code?.slice(0, 64) ?? null,
        failureMessage: failure.message.slice(0, 500),
        completedAt: now,
        lockedUntil: null,
        updatedAt: now,
      };
      Object.assign(refund, patch);
      await m.getRepository(RefundEntity).update({ id: refund.id }, patch);
      await this.events.record(m, sub, 'refund.failed', actorOf(refund), {
        reason: refund.reason,
        data: { refund_id: refund.id, payment_id: refund.paymentId, amount: refund.amount, tax_free_amount: refund.taxFreeAmount, failure },
      });
      return refund;
    });
  }

  /**
   * After Bootpay refused a cancel because its figures differ from ours (cancelled in Bootpay's console, a webhook
   * missed), the payment takes Bootpay's cumulative figures, so the next request is checked against the truth.
   */
  private async syncPaymentQuietly(paymentId: string, receiptId: string, code: string): Promise<void> {
    if (code !== 'RC_ALREADY_CANCELLED' && code !== 'RC_CANCEL_PRICE_EXCEEDED') return;
    try {
      await this.syncPayment(paymentId, await this.gateway.getReceipt(receiptId));
    } catch (err) {
      this.logger.warn({
        message: "could not fetch Bootpay's receipt after a refused refund",
        payment_id: paymentId,
        error_name: err instanceof Error ? err.name : typeof err,
      });
    }
  }

  private async syncPayment(paymentId: string, receipt: GatewayReceipt): Promise<void> {
    await this.syncFromReceipt(paymentId, receipt);
  }

  /**
   * Sets a payment's refunded figures from Bootpay's receipt (cumulative: never lowered, never above what was paid,
   * only from the receipt it was approved with). A cancellation Bootpay shows beyond this service's own refunds was
   * made at Bootpay (its admin console): it becomes a refund record (`source: bootpay`, succeeded) with its audit
   * event, `refund.succeeded`, and an item for finance. While a refund of the payment is in flight nothing is
   * attributed to Bootpay: that refund's own settlement accounts for it. Answers whether the payment changed.
   */
  async syncFromReceipt(paymentId: string, receipt: GatewayReceipt): Promise<boolean> {
    return this.db.transaction(async (m) => {
      const pre = await m.getRepository(PaymentEntity).findOneBy({ id: paymentId });
      if (!pre) return false;
      const sub = await this.lockSubscription(m, pre.subscriptionId);
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: paymentId })
        .getOneOrFail();
      const fits =
        receipt.receiptId === payment.receiptId &&
        ['DONE', 'PARTIAL_CANCELED'].includes(payment.status) &&
        receipt.cancelledPrice <= payment.amount &&
        receipt.cancelledTaxFree <= payment.taxFreeAmount &&
        receipt.cancelledPrice > payment.amount - payment.balanceAmount;
      if (!fits) return false;
      const now = this.clock.now();
      const before = { balanceAmount: payment.balanceAmount, refundedTaxFree: payment.refundedTaxFree };
      Object.assign(payment, {
        balanceAmount: payment.amount - receipt.cancelledPrice,
        refundedTaxFree: receipt.cancelledTaxFree,
        status: receipt.cancelledPrice === payment.amount ? 'CANCELED' : 'PARTIAL_CANCELED',
        canceledAt: receipt.cancelledAt ?? payment.canceledAt ?? now,
        updatedAt: now,
      });
      await m.getRepository(PaymentEntity).update(
        { id: payment.id },
        {
          balanceAmount: payment.balanceAmount,
          refundedTaxFree: payment.refundedTaxFree,
          status: payment.status,
          canceledAt: payment.canceledAt,
          updatedAt: now,
        },
      );
      const [{ in_flight: inFlight, amount: ours, tax_free: oursTaxFree, vat: oursVat }] = await m.query(
        `SELECT count(*) FILTER (WHERE status IN ('pending', 'unknown'))::int AS in_flight,
                COALESCE(sum(amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS amount,
                COALESCE(sum(tax_free_amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS tax_free,
                COALESCE(sum(vat) FILTER (WHERE status = 'succeeded'), 0)::bigint AS vat
         FROM refunds WHERE payment_id = $1`,
        [payment.id],
      );
      const outside = receipt.cancelledPrice - Number(ours);
      if (inFlight > 0 || outside <= 0) return true;
      const outsideTaxFree = Math.min(outside, Math.max(0, receipt.cancelledTaxFree - Number(oursTaxFree)));
      const split = refundSplit(
        {
          amount: payment.amount,
          taxFreeAmount: payment.taxFreeAmount,
          vat: payment.vat,
          balanceAmount: payment.amount - Number(ours),
          refundedTaxFree: Number(oursTaxFree),
          refundedVat: Number(oursVat),
        },
        outside,
        outsideTaxFree,
      );
      const id = randomUUID();
      const refund = m.getRepository(RefundEntity).create({
        id,
        paymentId: payment.id,
        subscriptionId: payment.subscriptionId,
        amount: outside,
        taxFreeAmount: split.taxFree,
        vat: split.vat,
        reason: 'refunded outside the service (at Bootpay)',
        status: 'succeeded',
        cancelId: `bp_${id.replace(/-/g, '')}`,
        failureCode: null,
        failurePgCode: null,
        failureMessage: null,
        requestedByApiKeyId: null,
        requestedByName: 'Bootpay',
        source: 'bootpay',
        attempts: 1,
        lastAttemptAt: now,
        lockedUntil: null,
        createdAt: now,
        updatedAt: now,
        completedAt: receipt.cancelledAt ?? now,
      });
      await m.getRepository(RefundEntity).insert(refund);
      await this.events.record(m, sub, 'refund.succeeded', 'system', {
        reason: refund.reason,
        data: {
          refund_id: refund.id,
          payment_id: payment.id,
          amount: refund.amount,
          tax_free_amount: refund.taxFreeAmount,
          vat: refund.vat,
          source: 'bootpay',
          payment_balance_amount: payment.balanceAmount,
          payment_status: payment.status,
        },
        object: { ...refundView(refund) },
      });
      await this.flags.raise(m, {
        kind: 'refund_outside',
        subscriptionId: sub.id,
        paymentId: payment.id,
        message: `${outside} won of payment ${payment.id} was refunded at Bootpay, not through this service (receipt ${receipt.receiptId})`,
        data: { amount: outside, before },
      });
      this.logger.warn({ message: 'refund made outside this service recorded', payment_id: payment.id, refund_id: refund.id, amount: outside });
      return true;
    });
  }

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

  private lockSubscription(m: EntityManager, id: string): Promise<SubscriptionEntity> {
    return m.getRepository(SubscriptionEntity).createQueryBuilder('s').setLock('pessimistic_write').where('s.id = :id', { id }).getOneOrFail();
  }

  private lockRefund(m: EntityManager, id: string): Promise<RefundEntity> {
    return m.getRepository(RefundEntity).createQueryBuilder('r').setLock('pessimistic_write').where('r.id = :id', { id }).getOneOrFail();
  }
}

/** The audit actor of a refund: whoever asked for it, also when it is settled later by the charge run. */
function actorOf(refund: RefundEntity): EventActor {
  if (!refund.requestedByApiKeyId) return 'system';
  return { apiKeyId: refund.requestedByApiKeyId, name: refund.requestedByName, role: 'admin' };
}

function failureOf(err: GatewayError): RefundFailure {
  return { code: String(err.code).slice(0, 64), pg_code: err.pgCode ? String(err.pgCode) : null, message: err.message };
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
