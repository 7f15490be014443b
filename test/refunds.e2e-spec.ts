import { BootpayGateway } from '../src/gateway/bootpay.gateway';
import { RefundsService } from '../src/ledger/refunds.service';
import { createPlan, createSubscription, customerWithKey } from './utils/fixtures';
import { bearer, startTestApp, tableCounts, TestApp } from './utils/test-app';

interface PaymentBody {
  id: string;
  subscription_id: string;
  receipt_id: string | null;
  amount: number;
  tax_free_amount: number;
  balance_amount: number;
  status: string;
  canceled_at: string | null;
}

describe('Refunds', () => {
  let t: TestApp;
  let planId: string;
  let taxFreePlanId: string;

  beforeAll(async () => {
    t = await startTestApp();
    planId = (await createPlan(t, { name: 'Pro', amount: 11000 })).id;
    taxFreePlanId = (await createPlan(t, { name: 'Books', amount: 10000, tax_free_amount: 4000 })).id;
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(async () => {
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
  });

  /** A subscription whose first period was charged at creation, and that payment. */
  async function paidPayment(plan = planId): Promise<PaymentBody> {
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan, billing_key_id: key.id });
    const res = await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey));
    expect(res.body.data).toHaveLength(1);
    const payment = res.body.data[0] as PaymentBody;
    expect(payment).toMatchObject({ status: 'DONE' });
    expect(payment.receipt_id).toBeTruthy();
    return payment;
  }

  const refund = (paymentId: string, body: Record<string, unknown>, key = t.adminKey) =>
    t.http.post(`/v1/payments/${paymentId}/refunds`).set(bearer(key)).send(body);

  async function getPayment(id: string): Promise<PaymentBody & { refunded_tax_free: number }> {
    const res = await t.http.get(`/v1/payments/${id}`).set(bearer(t.adminKey));
    expect(res.status).toBe(200);
    const row = (await t.db.query('SELECT refunded_tax_free FROM payments WHERE id = $1', [id])).rows[0];
    return { ...res.body, refunded_tax_free: Number(row.refunded_tax_free) };
  }

  /** What the fake Bootpay recorded for a receipt: each cancel, and its cumulative figures. */
  function fakeCancels(receiptId: string) {
    const ledger = t.fake.ledger();
    const cancels = ledger.cancels.filter((c) => c.receipt_id === receiptId);
    const charge = ledger.charges.find((c) => c.receipt_id === receiptId)!;
    return {
      cancels,
      cancelledPrice: charge.cancelled_price,
      cancelledTaxFree: cancels.reduce((s, c) => s + c.cancel_tax_free, 0),
    };
  }

  async function refundRows(paymentId: string) {
    return (await t.db.query('SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at, id', [paymentId])).rows;
  }

  async function eventsOf(subscriptionId: string) {
    const res = await t.http.get(`/v1/subscriptions/${subscriptionId}/events?limit=100`).set(bearer(t.adminKey));
    expect(res.status).toBe(200);
    return res.body.data as Array<{
      type: string;
      actor: { type: string; id: string | null; name: string | null };
      reason: string | null;
      data: Record<string, unknown>;
    }>;
  }

  async function adminKeyId(): Promise<string> {
    return (await t.db.query(`SELECT id FROM api_keys WHERE name = 'test admin'`)).rows[0].id;
  }

  describe('full and partial refunds', () => {
    it('should refund the whole balance when no amount is given: payment CANCELED, balance 0, one cancel at Bootpay', async () => {
      const p = await paidPayment();
      const res = await refund(p.id, { reason: 'customer asked for a refund' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        payment_id: p.id,
        subscription_id: p.subscription_id,
        currency: 'KRW',
        amount: 11000,
        tax_free_amount: 0,
        vat: 1000,
        supply_amount: 10000,
        reason: 'customer asked for a refund',
        status: 'succeeded',
        failure: null,
        requested_by: { api_key_id: await adminKeyId(), name: 'test admin' },
      });
      expect(res.body.cancel_id).toBe(`rf_${res.body.id.replace(/-/g, '')}`);
      expect(res.body.completed_at).toEqual(expect.any(String));

      const payment = await getPayment(p.id);
      expect(payment).toMatchObject({ status: 'CANCELED', balance_amount: 0, refunded_tax_free: 0 });
      expect(payment.canceled_at).toEqual(expect.any(String));

      const fake = fakeCancels(p.receipt_id!);
      expect(fake.cancels).toEqual([expect.objectContaining({ cancel_id: res.body.cancel_id, cancel_price: 11000, cancel_tax_free: 0 })]);
      expect(fake.cancelledPrice).toBe(11000);

      const rows = await refundRows(p.id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'succeeded', amount: '11000', vat: '1000', cancel_id: res.body.cancel_id, requested_by_name: 'test admin' });
    });

    it('should refund 3,000 then 2,000 of 11,000: PARTIAL_CANCELED, balance 6,000, Bootpay cumulative 5,000', async () => {
      const p = await paidPayment();
      const first = await refund(p.id, { amount: 3000, reason: 'outage credit' });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ amount: 3000, tax_free_amount: 0, vat: 273, status: 'succeeded' });
      expect(await getPayment(p.id)).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 8000 });

      t.clock.advance(1000); // lists are ordered by created_at: the test clock stands still otherwise
      const second = await refund(p.id, { amount: 2000, reason: 'second outage' });
      expect(second.status).toBe(201);
      expect(second.body).toMatchObject({ amount: 2000, vat: 182, status: 'succeeded' });
      expect(second.body.cancel_id).not.toBe(first.body.cancel_id);

      expect(await getPayment(p.id)).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 6000 });
      const fake = fakeCancels(p.receipt_id!);
      expect(fake.cancelledPrice).toBe(5000);
      expect(fake.cancels.map((c) => c.cancel_price)).toEqual([3000, 2000]);

      // Listed oldest first, paginated like the other lists.
      const page1 = await t.http.get(`/v1/payments/${p.id}/refunds?limit=1`).set(bearer(t.adminKey));
      expect(page1.status).toBe(200);
      expect(page1.body).toMatchObject({ has_more: true, data: [expect.objectContaining({ id: first.body.id })] });
      const page2 = await t.http.get(`/v1/payments/${p.id}/refunds?limit=1&cursor=${page1.body.next_cursor}`).set(bearer(t.adminKey));
      expect(page2.body).toMatchObject({ has_more: false, next_cursor: null, data: [expect.objectContaining({ id: second.body.id })] });
      const all = await t.http.get(`/v1/payments/${p.id}/refunds`).set(bearer(t.adminKey));
      expect(all.body.data.map((r: { amount: number }) => r.amount)).toEqual([3000, 2000]);
    });

    it('should record refund.succeeded on the subscription with the admin as actor, the reason and the amounts', async () => {
      const p = await paidPayment();
      const res = await refund(p.id, { amount: 1100, reason: 'goodwill' });
      expect(res.status).toBe(201);
      const events = (await eventsOf(p.subscription_id)).filter((e) => e.type === 'refund.succeeded');
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        actor: { type: 'api_key', id: await adminKeyId(), name: 'test admin' },
        reason: 'goodwill',
        data: expect.objectContaining({
          refund_id: res.body.id,
          payment_id: p.id,
          amount: 1100,
          tax_free_amount: 0,
          vat: 100,
          payment_balance_amount: 9900,
          payment_status: 'PARTIAL_CANCELED',
        }),
      });
    });
  });

  describe('tax-free amounts', () => {
    it('should split the tax-free part proportionally, take a given one, and refuse what exceeds either side', async () => {
      const p = await paidPayment(taxFreePlanId);
      expect(p).toMatchObject({ amount: 10000, tax_free_amount: 4000 });

      // 5,000 of 10,000 with 4,000 tax-free: splitTaxFree(5000, 10000, 4000) = 2,000; VAT of the taxable 3,000 = 273.
      const split = await refund(p.id, { amount: 5000, reason: 'half' });
      expect(split.status).toBe(201);
      expect(split.body).toMatchObject({ amount: 5000, tax_free_amount: 2000, vat: 273, supply_amount: 2727 });
      expect(await getPayment(p.id)).toMatchObject({ balance_amount: 5000, refunded_tax_free: 2000 });
      expect(fakeCancels(p.receipt_id!).cancels[0]).toMatchObject({ cancel_price: 5000, cancel_tax_free: 2000 });

      // Left: 5,000 of which 2,000 tax-free and 3,000 taxable.
      const before = await tableCounts(t.db);
      const tooMuchTaxFree = await refund(p.id, { amount: 3000, tax_free_amount: 2500, reason: 'x' });
      expect(tooMuchTaxFree.status).toBe(409);
      expect(tooMuchTaxFree.body).toMatchObject({ code: 'refund_tax_free_exceeds_remaining', remaining_tax_free_amount: 2000 });
      expect(tooMuchTaxFree.body.message).toMatch(/2,500 won exceeds .* 2,000 won/);
      const tooMuchTaxable = await refund(p.id, { amount: 4000, tax_free_amount: 0, reason: 'x' });
      expect(tooMuchTaxable.status).toBe(409);
      expect(tooMuchTaxable.body).toMatchObject({ code: 'refund_taxable_exceeds_remaining', remaining_taxable_amount: 3000 });
      const fullWithWrongTaxFree = await refund(p.id, { tax_free_amount: 1000, reason: 'x' });
      expect(fullWithWrongTaxFree.status).toBe(409);
      expect(fullWithWrongTaxFree.body.code).toBe('refund_taxable_exceeds_remaining');
      expect(await tableCounts(t.db)).toEqual(before);
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);

      const given = await refund(p.id, { amount: 2000, tax_free_amount: 1500, reason: 'books returned' });
      expect(given.status).toBe(201);
      expect(given.body).toMatchObject({ amount: 2000, tax_free_amount: 1500, vat: 45 });
      expect(await getPayment(p.id)).toMatchObject({ balance_amount: 3000, refunded_tax_free: 3500 });

      // The rest: 3,000 with all the remaining 500 tax-free.
      const rest = await refund(p.id, { reason: 'the rest' });
      expect(rest.status).toBe(201);
      expect(rest.body).toMatchObject({ amount: 3000, tax_free_amount: 500, vat: 227 });
      expect(await getPayment(p.id)).toMatchObject({ status: 'CANCELED', balance_amount: 0, refunded_tax_free: 4000 });
      const fake = fakeCancels(p.receipt_id!);
      expect(fake).toMatchObject({ cancelledPrice: 10000, cancelledTaxFree: 4000 });
      const receipt = await t.app.get(BootpayGateway).getReceipt(p.receipt_id!);
      expect(receipt).toMatchObject({ cancelledPrice: 10000, cancelledTaxFree: 4000 });
    });
  });

  describe('refusals', () => {
    it('should refuse an amount above the balance and a refund after a full refund with 409, storing and sending nothing', async () => {
      const p = await paidPayment();
      await t.fake.webhooksIdle();
      let before = await tableCounts(t.db);
      const above = await refund(p.id, { amount: 11001, reason: 'too much' });
      expect(above.status).toBe(409);
      expect(above.body).toMatchObject({ status_code: 409, code: 'refund_exceeds_balance', amount: 11001, balance_amount: 11000 });
      expect(above.body.message).toBe("The refund of 11,001 won exceeds the payment's remaining balance of 11,000 won");
      expect(await tableCounts(t.db)).toEqual(before);
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(0);

      expect((await refund(p.id, { reason: 'all of it' })).status).toBe(201);
      await t.fake.webhooksIdle();
      before = await tableCounts(t.db);
      for (const body of [{ reason: 'again' }, { amount: 1, reason: 'again' }]) {
        const again = await refund(p.id, body);
        expect(again.status).toBe(409);
        expect(again.body).toMatchObject({ code: 'payment_not_refundable', payment_status: 'CANCELED', message: 'The payment is already fully refunded' });
      }
      expect(await tableCounts(t.db)).toEqual(before);
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);
      expect(await getPayment(p.id)).toMatchObject({ status: 'CANCELED', balance_amount: 0 });
    });

    it('should refuse a payment that was not approved, and one whose receipt is not known yet, with 409', async () => {
      const { customer, key } = await customerWithKey(t, { card_no: '4111110000000051' });
      // Declined at creation (402): its payment is ABORTED.
      await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id }, 402);
      const aborted = (await t.http.get(`/v1/payments?customer_id=${customer.id}`).set(bearer(t.adminKey))).body.data[0];
      expect(aborted.status).toBe('ABORTED');
      const res = await refund(aborted.id, { reason: 'x' });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ code: 'payment_not_refundable', payment_status: 'ABORTED', allowed_from: ['DONE', 'PARTIAL_CANCELED'] });

      const p = await paidPayment();
      await t.db.query('UPDATE payments SET receipt_id = NULL WHERE id = $1', [p.id]);
      const noReceipt = await refund(p.id, { reason: 'x' });
      expect(noReceipt.status).toBe(409);
      expect(noReceipt.body.code).toBe('payment_receipt_unknown');
      await t.db.query('UPDATE payments SET receipt_id = $2 WHERE id = $1', [p.id, p.receipt_id]);
      expect(await refundRows(p.id)).toHaveLength(0);
    });

    it('should refuse a second refund while one of the same payment is in flight with 409', async () => {
      const p = await paidPayment();
      t.fake.setFaults({ latency_ms: 400 });
      const [a, b] = await Promise.all([refund(p.id, { amount: 1000, reason: 'a' }), refund(p.id, { amount: 1000, reason: 'b' })]);
      t.fake.setFaults({});
      const statuses = [a.status, b.status].sort();
      expect(statuses).toEqual([201, 409]);
      const refused = a.status === 409 ? a : b;
      expect(refused.body.code).toBe('refund_in_progress');
      expect(await refundRows(p.id)).toHaveLength(1);
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);
      expect(await getPayment(p.id)).toMatchObject({ balance_amount: 10000 });
    });

    it("should store a refund Bootpay refuses as failed and answer 409 with Bootpay's code, then follow Bootpay's figures", async () => {
      const p = await paidPayment();
      // 5,000 refunded in Bootpay's console, and its webhook missed: the service still thinks 11,000 remain.
      await t.app.get(BootpayGateway).cancelPayment({ receiptId: p.receipt_id!, cancelPrice: 5000, cancelId: 'console-1' });
      await t.fake.webhooksIdle();
      await t.db.query(`UPDATE payments SET balance_amount = amount, refunded_tax_free = 0, status = 'DONE', canceled_at = NULL WHERE id = $1`, [p.id]);

      const res = await refund(p.id, { reason: 'all of it' });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({
        code: 'refund_refused',
        failure: expect.objectContaining({ code: 'RC_CANCEL_PRICE_EXCEEDED' }),
        refund: expect.objectContaining({ status: 'failed', amount: 11000, failure: expect.objectContaining({ code: 'RC_CANCEL_PRICE_EXCEEDED' }) }),
      });
      // The refund asked for failed; the 5,000 refunded in Bootpay's console is now a refund of its own (source bootpay).
      const rows = await refundRows(p.id);
      expect(rows).toHaveLength(2);
      expect(rows).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ status: 'failed', failure_code: 'RC_CANCEL_PRICE_EXCEEDED' }),
          expect.objectContaining({ status: 'succeeded', source: 'bootpay', amount: '5000' }),
        ]),
      );
      // The payment now shows what Bootpay shows, so the next refund is checked against it.
      expect(await getPayment(p.id)).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 6000 });
      expect((await eventsOf(p.subscription_id)).map((e) => e.type)).toContain('refund.failed');

      const rest = await refund(p.id, { reason: 'the rest' });
      expect(rest.status).toBe(201);
      expect(rest.body.amount).toBe(6000);
      expect(await getPayment(p.id)).toMatchObject({ status: 'CANCELED', balance_amount: 0 });
      expect(fakeCancels(p.receipt_id!).cancelledPrice).toBe(11000);
    });
  });

  describe('input and access', () => {
    const badBodies: [string, Record<string, unknown>, string][] = [
      ['amount 0', { amount: 0, reason: 'x' }, 'amount'],
      ['a negative amount', { amount: -100, reason: 'x' }, 'amount'],
      ['a fractional amount', { amount: 1.5, reason: 'x' }, 'amount'],
      ['an amount as a string', { amount: '3000', reason: 'x' }, 'amount'],
      ['a null amount', { amount: null, reason: 'x' }, 'amount'],
      ['a negative tax_free_amount', { amount: 1000, tax_free_amount: -1, reason: 'x' }, 'tax_free_amount'],
      ['a tax_free_amount above the amount', { amount: 1000, tax_free_amount: 1001, reason: 'x' }, 'tax_free_amount'],
      ['a missing reason', { amount: 1000 }, 'reason'],
      ['a blank reason', { amount: 1000, reason: '   ' }, 'reason'],
      ['an unknown field', { amount: 1000, reason: 'x', currency: 'USD' }, 'currency'],
    ];
    let payment: PaymentBody;
    beforeAll(async () => {
      payment = await paidPayment();
      await t.fake.webhooksIdle();
    });

    it.each(badBodies)('should refuse %s with 400 naming the field, storing and sending nothing', async (_, body, field) => {
      const before = await tableCounts(t.db);
      const res = await refund(payment.id, body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid_request');
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      expect(await tableCounts(t.db)).toEqual(before);
      expect(fakeCancels(payment.receipt_id!).cancels).toHaveLength(0);
    });

    it('should refuse the service key with 403, and answer 404 for an unknown payment and 400 for a bad id', async () => {
      const post = await refund(payment.id, { reason: 'x' }, t.serviceKey);
      expect(post.status).toBe(403);
      expect(post.body.code).toBe('insufficient_role');
      expect((await t.http.get(`/v1/payments/${payment.id}/refunds`).set(bearer(t.serviceKey))).status).toBe(403);
      const unknown = await refund('00000000-0000-4000-8000-000000000000', { reason: 'x' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('payment_not_found');
      expect((await t.http.get('/v1/payments/00000000-0000-4000-8000-000000000000/refunds').set(bearer(t.adminKey))).status).toBe(404);
      const bad = await refund('nope', { reason: 'x' });
      expect(bad.status).toBe(400);
      expect(bad.body.details).toEqual([{ field: 'id', message: 'id must be a UUID' }]);
      expect(await refundRows(payment.id)).toHaveLength(0);
    });

    it('should refund once when the same request is repeated with the same Idempotency-Key', async () => {
      const p = await paidPayment();
      const send = () =>
        t.http.post(`/v1/payments/${p.id}/refunds`).set(bearer(t.adminKey)).set('Idempotency-Key', `refund-${p.id}`).send({ amount: 2000, reason: 'dup' });
      const first = await send();
      const second = await send();
      expect(first.status).toBe(201);
      expect(second.status).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.body).toEqual(first.body);
      expect(await refundRows(p.id)).toHaveLength(1);
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);
      expect(await getPayment(p.id)).toMatchObject({ balance_amount: 9000 });
    });
  });

  describe('unknown outcomes', () => {
    it('should replay a 202 (outcome unknown) as 202 for the same Idempotency-Key, without a second cancel', async () => {
      const p = await paidPayment();
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: 'cancel' } });
      const send = () =>
        t.http.post(`/v1/payments/${p.id}/refunds`).set(bearer(t.adminKey)).set('Idempotency-Key', `unknown-${p.id}`).send({ amount: 1000, reason: 'replay' });
      const first = await send();
      const again = await send();
      expect(first.status).toBe(202);
      expect(again.status).toBe(202);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);
      await t.fake.webhooksIdle();
      await t.app.get(RefundsService).resolveUnknown();
    });

    it('should answer 202 unknown when the cancel times out, and resolveUnknown settles it without a second cancel', async () => {
      const p = await paidPayment();
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: 'cancel' } });
      const res = await refund(p.id, { amount: 4000, reason: 'timed out' });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ status: 'unknown', amount: 4000, completed_at: null });
      // Bootpay did cancel it: the answer was lost.
      expect(fakeCancels(p.receipt_id!).cancels).toEqual([expect.objectContaining({ cancel_id: res.body.cancel_id, cancel_price: 4000 })]);
      await t.fake.webhooksIdle();

      const summary = await t.app.get(RefundsService).resolveUnknown();
      expect(summary).toMatchObject({ examined: 1, succeeded: 1, failed: 0, unknown: 0 });
      const rows = await refundRows(p.id);
      expect(rows).toEqual([expect.objectContaining({ id: res.body.id, status: 'succeeded', attempts: 2 })]);
      expect(rows[0].completed_at).toBeInstanceOf(Date);
      // Re-sent with the same cancel_id: Bootpay refused it as a duplicate, so still one cancel.
      const fake = fakeCancels(p.receipt_id!);
      expect(fake.cancels).toHaveLength(1);
      expect(fake.cancelledPrice).toBe(4000);
      expect(await getPayment(p.id)).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 7000 });

      const events = (await eventsOf(p.subscription_id)).filter((e) => e.type === 'refund.succeeded');
      expect(events).toEqual([
        expect.objectContaining({
          actor: { type: 'api_key', id: await adminKeyId(), name: 'test admin' },
          reason: 'timed out',
          data: expect.objectContaining({ refund_id: res.body.id, amount: 4000, resolved_later: true }),
        }),
      ]);
      // Nothing left to resolve; a second call changes nothing.
      expect(await t.app.get(RefundsService).resolveUnknown()).toMatchObject({ examined: 0 });
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);
    });

    it('should send the cancel on resolve when the first never reached Bootpay (5xx before processing), once', async () => {
      const p = await paidPayment();
      t.fake.setFaults({ fail_next: { count: 1, status: 503, route: 'cancel' } });
      const res = await refund(p.id, { amount: 1000, reason: 'flaky' });
      expect(res.status).toBe(202);
      expect(res.body.status).toBe('unknown');
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(0);

      expect(await t.app.get(RefundsService).resolveUnknown()).toMatchObject({ succeeded: 1 });
      expect(fakeCancels(p.receipt_id!).cancels).toEqual([expect.objectContaining({ cancel_id: res.body.cancel_id, cancel_price: 1000 })]);
      expect(await getPayment(p.id)).toMatchObject({ balance_amount: 10000 });
    });

    it('should resolve an unknown refund of the payment first when a new refund is requested', async () => {
      const p = await paidPayment();
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: 'cancel' } });
      const lost = await refund(p.id, { amount: 3000, reason: 'first' });
      expect(lost.status).toBe(202);

      const next = await refund(p.id, { amount: 2000, reason: 'second' });
      expect(next.status).toBe(201);
      const rows = await refundRows(p.id);
      expect(rows.map((r) => [r.reason, r.status]).sort()).toEqual([
        ['first', 'succeeded'],
        ['second', 'succeeded'],
      ]);
      const fake = fakeCancels(p.receipt_id!);
      expect(fake.cancels.map((c) => c.cancel_price)).toEqual([3000, 2000]);
      expect(fake.cancelledPrice).toBe(5000);
      expect(await getPayment(p.id)).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 6000 });
    });

    it('should take over a refund left pending by a crash before it was sent, once its lease has expired', async () => {
      const p = await paidPayment();
      const id = '7d1f0c52-3a47-4f5e-9b7a-2f6c1e0d9a11';
      const now = t.clock.now();
      // What a crash right after the commit leaves: pending, its cancel_id fixed, never sent, a sender's lease.
      await t.db.query(
        `INSERT INTO refunds (id, payment_id, subscription_id, amount, tax_free_amount, vat, reason, status, cancel_id,
           requested_by_api_key_id, requested_by_name, attempts, last_attempt_at, locked_until, created_at, updated_at)
         VALUES ($1, $2, $3, 2200, 0, 200, 'crashed', 'pending', $4, $5, 'test admin', 1, $6, $7, $6, $6)`,
        [id, p.id, p.subscription_id, `rf_${id.replace(/-/g, '')}`, await adminKeyId(), now, new Date(now.getTime() + 60_000)],
      );
      const service = t.app.get(RefundsService);
      // While the sender may still be at it, nobody else sends it, and no other refund of the payment starts.
      expect(await service.resolveUnknown()).toMatchObject({ examined: 0 });
      const blocked = await refund(p.id, { amount: 1000, reason: 'meanwhile' });
      expect(blocked.status).toBe(409);
      expect(blocked.body).toMatchObject({ code: 'refund_in_progress', refund_id: id, refund_status: 'pending' });
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(0);

      t.clock.advance(5 * 60_000);
      expect(await service.resolveUnknown()).toMatchObject({ examined: 1, succeeded: 1 });
      expect(fakeCancels(p.receipt_id!).cancels).toEqual([expect.objectContaining({ cancel_id: `rf_${id.replace(/-/g, '')}`, cancel_price: 2200 })]);
      expect(await refundRows(p.id)).toEqual([expect.objectContaining({ id, status: 'succeeded', attempts: 2, locked_until: null })]);
      expect(await getPayment(p.id)).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 8800 });
      const listed = await t.http.get(`/v1/payments/${p.id}/refunds`).set(bearer(t.adminKey));
      expect(listed.body.data).toEqual([
        expect.objectContaining({ id, status: 'succeeded', requested_by: { api_key_id: await adminKeyId(), name: 'test admin' } }),
      ]);
    });

    it('should never refund more than the balance when an unknown refund is resolved by the request that follows', async () => {
      const p = await paidPayment();
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: 'cancel' } });
      expect((await refund(p.id, { reason: 'all, timed out' })).status).toBe(202);
      const again = await refund(p.id, { reason: 'all, again' });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('payment_not_refundable');
      expect(fakeCancels(p.receipt_id!).cancels).toHaveLength(1);
      expect((await refundRows(p.id)).map((r) => r.status)).toEqual(['succeeded']);
      expect(await getPayment(p.id)).toMatchObject({ status: 'CANCELED', balance_amount: 0 });
    });
  });
});

describe('Cancel with refund_unused', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ now: new Date('2026-04-01T00:00:00Z') });
  });
  afterAll(async () => {
    await t.close();
  });

  it('should refund the unused part of the paid period, prorated in whole won, when cancelling now', async () => {
    const plan = await createPlan(t, { amount: 30000, interval: 'day', interval_count: 30 });
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    t.clock.advance(10 * 24 * 60 * 60 * 1000); // 10 of 30 days used
    // Refunding is a finance decision: the SaaS backend's service key may not ask for it, and nothing changes.
    const refused = await t.http
      .post(`/v1/subscriptions/${sub.id}/cancel`)
      .set(bearer(t.serviceKey))
      .send({ at_period_end: false, reason: 'moving away', refund_unused: true });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('refund_requires_admin');
    expect((await t.http.get(`/v1/subscriptions/${sub.id}`).set(bearer(t.serviceKey))).body.status).toBe('active');
    const res = await t.http
      .post(`/v1/subscriptions/${sub.id}/cancel`)
      .set(bearer(t.adminKey))
      .send({ at_period_end: false, reason: 'moving away', refund_unused: true });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('canceled');
    const payment = (await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey))).body.data[0];
    expect(payment).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 10000 });
    const refunds = await t.http.get(`/v1/payments/${payment.id}/refunds`).set(bearer(t.adminKey));
    expect(refunds.body.data).toEqual([expect.objectContaining({ amount: 20000, status: 'succeeded' })]);
    expect(
      t.fake
        .ledger()
        .cancels.filter((c) => c.receipt_id === payment.receipt_id)
        .map((c) => c.cancel_price),
    ).toEqual([20000]);
  });

  it('should refuse refund_unused with a cancel at period end, and change nothing', async () => {
    const plan = await createPlan(t);
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    const res = await t.http
      .post(`/v1/subscriptions/${sub.id}/cancel`)
      .set(bearer(t.serviceKey))
      .send({ at_period_end: true, reason: 'x', refund_unused: true });
    expect(res.status).toBe(400);
    expect(res.body.details[0].field).toBe('refund_unused');
    expect((await t.http.get(`/v1/subscriptions/${sub.id}`).set(bearer(t.serviceKey))).body.cancel_at_period_end).toBe(false);
  });
});
