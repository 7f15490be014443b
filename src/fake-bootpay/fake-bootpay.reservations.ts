/**
 * Reservation routes (Bootpay's scheduled charges): reserve (POST /v2/subscribe/payment/reserve), look up, revoke; and
 * the execution of due reservations, which charges the key and sends the payment's webhook.
 */
import type { ReservationExecution } from './fake-bootpay.types';
import { FakeHttpError, invalid, Json, optString, parseIso } from './fake-bootpay.http';
import type { FakeBillingKeys } from './fake-bootpay.billing-keys';
import { chargeFields, declineFor, newPayment } from './fake-bootpay.payments';
import type { FakeWebhooks } from './fake-bootpay.webhooks';
import { FakeSite, FakeState, hexId, iso, RESERVATION_STATUS, ReservationRec, suffix } from './fake-bootpay.state';

const MAX_ACTIVE_RESERVATIONS_PER_KEY = 10;

/** The reservations: made, looked up, revoked and executed when due. */
export class FakeReservations {
  constructor(
    private readonly state: FakeState,
    private readonly fake: FakeSite,
    private readonly keys: FakeBillingKeys,
    private readonly webhooks: FakeWebhooks,
  ) {}

  reserve(body: Json): Json {
    const f = chargeFields(body);
    const executeAt = parseIso(body.reserve_execute_at);
    if (!executeAt) throw invalid('reserve_execute_at 은 ISO-8601 형식이어야 합니다');
    const feedbackUrl = optString(body, 'feedback_url');
    const now = this.fake.now();
    if (executeAt.getTime() <= now.getTime()) throw invalid('reserve_execute_at 은 현재 시각 이후여야 합니다');
    this.state.duplicateOrder(f.orderId, true);
    const bk = this.keys.activeKey(f.billingKey);
    if (bk.activeReservations >= MAX_ACTIVE_RESERVATIONS_PER_KEY) {
      throw new FakeHttpError(400, 'RC_RESERVE_LIMIT_EXCEEDED', '빌링키당 최대 10건까지 예약할 수 있습니다');
    }
    const r: ReservationRec = {
      reserveId: hexId(),
      bk,
      orderId: f.orderId,
      orderName: f.orderName,
      price: f.price,
      taxFree: f.taxFree,
      metadata: body.metadata ?? {},
      user: body.user ?? {},
      feedbackUrl,
      contentType: typeof body.content_type === 'string' ? body.content_type : 'application/json',
      requestedAt: now,
      executeAt,
      startedAt: null,
      finishedAt: null,
      revokedAt: null,
      status: RESERVATION_STATUS.RESERVED,
      receiptId: null,
    };
    bk.activeReservations += 1;
    this.state.reservations.set(r.reserveId, r);
    this.state.reservationList.push(r);
    this.state.activeReservations.set(r.reserveId, r);
    this.state.activeReservationOrderIds.set(r.orderId, r.reserveId);
    return { reserve_id: r.reserveId, reserve_execute_at: executeAt.toISOString() };
  }

  reservationById(reserveId: string): ReservationRec {
    const r = this.state.reservations.get(reserveId);
    if (!r) throw new FakeHttpError(404, 'RC_NOT_FOUND', '예약 정보를 찾을 수 없습니다');
    return r;
  }

  reservationJson(r: ReservationRec): Json {
    return {
      reserve_id: r.reserveId,
      ...(r.receiptId ? { receipt_id: r.receiptId } : {}),
      order_id: r.orderId,
      price: r.price,
      tax_free: r.taxFree,
      order_name: r.orderName,
      user: r.user,
      feedback_url: r.feedbackUrl,
      metadata: r.metadata,
      content_type: r.contentType,
      version: 1,
      extra: { subscribe_test_payment: false },
      reserve_requested_at: r.requestedAt.toISOString(),
      reserve_execute_at: r.executeAt.toISOString(),
      reserve_started_at: iso(r.startedAt),
      reserve_finished_at: iso(r.finishedAt),
      reserve_revoked_at: iso(r.revokedAt),
      status: r.status,
    };
  }

  private deactivate(r: ReservationRec): void {
    if (this.state.activeReservations.delete(r.reserveId)) {
      r.bk.activeReservations -= 1;
      if (this.state.activeReservationOrderIds.get(r.orderId) === r.reserveId) this.state.activeReservationOrderIds.delete(r.orderId);
    }
  }

  revokeReservation(reserveId: string): Json {
    const r = this.reservationById(reserveId);
    if (r.bk.destroyedAt) throw new FakeHttpError(400, 'SUBSCRIBE_BK_EXPIRED', '만료되었거나 삭제된 빌링키입니다');
    if (r.status !== RESERVATION_STATUS.RESERVED) {
      throw new FakeHttpError(400, 'RC_RESERVE_ALREADY_DONE', '이미 실행되었거나 취소된 예약입니다');
    }
    r.status = RESERVATION_STATUS.REVOKED;
    r.revokedAt = this.fake.now();
    this.deactivate(r);
    return { reserve_id: r.reserveId, success: true };
  }

  private executeReservation(r: ReservationRec): ReservationExecution {
    const now = this.fake.now();
    r.status = RESERVATION_STATUS.EXECUTING;
    r.startedAt = now;
    this.deactivate(r);
    const bk = r.bk;
    let failure: { errorCode: string; pgErrorCode: string | null; message: string } | null = null;
    if (this.state.approvedOrderIds.has(r.orderId)) {
      failure = { errorCode: 'RC_DUPLICATE_ORDER_ID', pgErrorCode: null, message: '이미 결제된 주문번호(order_id)입니다' };
    } else if (bk.destroyedAt) {
      failure = { errorCode: 'SUBSCRIBE_BK_EXPIRED', pgErrorCode: null, message: '만료되었거나 삭제된 빌링키입니다' };
    } else {
      bk.chargeAttempts += 1;
      const decline = declineFor(bk, bk.chargeAttempts, now);
      if (decline) failure = { errorCode: decline.chargeErrorCode, pgErrorCode: decline.pgErrorCode, message: decline.message };
    }
    const p = newPayment(bk, r, { metadata: r.metadata, user: r.user, feedbackUrl: r.feedbackUrl, source: 'reservation', now });
    if (failure) {
      p.status = -2;
      p.purchasedAt = null;
      p.approveNo = null;
      p.failure = failure;
      this.state.failedCharges.push({
        receipt_id: p.receiptId,
        order_id: r.orderId,
        billing_key_suffix: suffix(bk.billingKey),
        price: r.price,
        error_code: failure.errorCode,
        pg_error_code: failure.pgErrorCode,
        message: failure.message,
        at: now.toISOString(),
        source: 'reservation',
      });
    }
    this.state.recordPayment(p);
    r.receiptId = p.receiptId;
    r.finishedAt = now;
    r.status = failure ? RESERVATION_STATUS.EXECUTION_FAILED : RESERVATION_STATUS.EXECUTED;
    this.webhooks.queueWebhook(p, failure ? 'PAYMENT_REQUEST_FAILED' : 'PAYMENT_COMPLETED');
    return {
      reserve_id: r.reserveId,
      order_id: r.orderId,
      receipt_id: p.receiptId,
      result: failure ? 'failed' : 'success',
      reservation_status: r.status,
      ...(failure ? { error_code: failure.errorCode, pg_error_code: failure.pgErrorCode, message: failure.message } : {}),
      executed_at: now.toISOString(),
    };
  }

  /** Executes every active reservation due at `now` (default: the fake's clock), in due-time order. */
  executeDue(now?: Date): ReservationExecution[] {
    const at = now ?? this.fake.now();
    const due = [...this.state.activeReservations.values()]
      .filter((r) => r.executeAt.getTime() <= at.getTime())
      .sort((a, b) => a.executeAt.getTime() - b.executeAt.getTime() || a.requestedAt.getTime() - b.requestedAt.getTime());
    const executions: ReservationExecution[] = [];
    for (const r of due) executions.push(this.executeReservation(r));
    return executions;
  }
}
