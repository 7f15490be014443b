import { createPlan, createSubscription, customerWithKey } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

interface Figures {
  id: string;
  amount: number;
  tax_free_amount: number;
  vat: number;
  supply_amount: number;
  status: string;
}

/** The refunds of one payment add up to the payment: amount, tax-free part, VAT and supply amount. */
describe('Refund amounts', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
  });

  /** A subscription charged at creation on a plan of `amount` with `taxFree` tax-free, and its payment. */
  async function paidPayment(amount: number, taxFree: number): Promise<Figures & { receipt_id: string }> {
    const plan = await createPlan(t, { name: `Plan ${amount}/${taxFree}`, amount, tax_free_amount: taxFree });
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    const res = await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey));
    expect(res.body.data).toHaveLength(1);
    const payment = res.body.data[0] as Figures & { receipt_id: string };
    expect(payment).toMatchObject({ status: 'DONE', amount, tax_free_amount: taxFree });
    return payment;
  }

  const refund = (paymentId: string, body: Record<string, unknown>) => t.http.post(`/v1/payments/${paymentId}/refunds`).set(bearer(t.adminKey)).send(body);

  async function refundAll(paymentId: string, amounts: number[]): Promise<Figures[]> {
    const refunds: Figures[] = [];
    for (const amount of amounts) {
      const res = await refund(paymentId, { amount, reason: 'partial refund' });
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('succeeded');
      refunds.push(res.body as Figures);
    }
    return refunds;
  }

  const sum = (refunds: Figures[], field: 'amount' | 'tax_free_amount' | 'vat' | 'supply_amount') => refunds.reduce((s, r) => s + r[field], 0);

  it('should give refunds of 11,000 (1,000 tax-free, VAT 909) in four partials VATs that sum to 909', async () => {
    const p = await paidPayment(11000, 1000);
    expect(p).toMatchObject({ vat: 909, supply_amount: 9091 });

    const refunds = await refundAll(p.id, [2750, 2750, 2750, 2750]);

    // Each takes 250 tax-free; the VAT follows the taxable amount refunded so far (909 × 2,500 / 10,000 = 227.25 → 227,
    // 909 × 5,000 / 10,000 = 454.5 → 455, 681.75 → 682, then the 227 left), where rounding each alone gave 227 × 4.
    expect(refunds.map((r) => [r.tax_free_amount, r.vat])).toEqual([
      [250, 227],
      [250, 228],
      [250, 227],
      [250, 227],
    ]);

    expect(sum(refunds, 'amount')).toBe(11000);
    expect(sum(refunds, 'tax_free_amount')).toBe(1000);
    expect(sum(refunds, 'vat')).toBe(909);
    expect(sum(refunds, 'supply_amount')).toBe(9091);
    // Each refund is itself consistent: amount = tax-free + VAT + supply.
    for (const r of refunds) expect(r.tax_free_amount + r.vat + r.supply_amount).toBe(r.amount);

    const payment = await t.http.get(`/v1/payments/${p.id}`).set(bearer(t.adminKey));
    expect(payment.body).toMatchObject({ status: 'CANCELED', balance_amount: 0 });
    const listed = await t.http.get(`/v1/payments/${p.id}/refunds?limit=100`).set(bearer(t.adminKey));
    expect(listed.body.data).toHaveLength(4);
    expect(sum(listed.body.data as Figures[], 'vat')).toBe(909);
  });

  it('should give the last of several uneven partials of 10,000 (VAT 909) the VAT that remains', async () => {
    const p = await paidPayment(10000, 0);
    expect(p.vat).toBe(909);

    // Each of the first three alone would round its VAT down (5 / 11 = 0.45): the last takes the rest.
    const refunds = await refundAll(p.id, [5, 5, 5, 9985]);

    expect(sum(refunds, 'vat')).toBe(909);
    expect(sum(refunds, 'supply_amount')).toBe(9091);
    expect(sum(refunds, 'tax_free_amount')).toBe(0);
  });

  it('should keep the rule for an explicit tax-free part and a full refund of the rest', async () => {
    const p = await paidPayment(15000, 4000); // VAT 1,000, supply 10,000
    expect(p).toMatchObject({ vat: 1000, supply_amount: 10000 });

    const first = await refund(p.id, { amount: 3333, tax_free_amount: 333, reason: 'partial refund' });
    expect(first.status).toBe(201);
    const rest = await refund(p.id, { reason: 'the rest' });
    expect(rest.status).toBe(201);
    const refunds = [first.body as Figures, rest.body as Figures];

    expect(refunds[0]).toMatchObject({ amount: 3333, tax_free_amount: 333 });
    expect(sum(refunds, 'amount')).toBe(15000);
    expect(sum(refunds, 'tax_free_amount')).toBe(4000);
    expect(sum(refunds, 'vat')).toBe(1000);
    expect(sum(refunds, 'supply_amount')).toBe(10000);
  });
});
