import { createPlan, createSubscription, customerWithKey, ledgerChargesOf, runCharges } from './utils/fixtures';
import { bearer, startTestApp, tableCounts, TestApp, T0 } from './utils/test-app';

describe('Plans', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('create and read', () => {
    it('should create a plan with its defaults and show the VAT included in the price', async () => {
      const res = await t.http
        .post('/v1/plans')
        .set(bearer(t.adminKey))
        .send({ name: 'Pro monthly', description: 'Everything in Pro', amount: 11000, interval: 'month' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name: 'Pro monthly',
        description: 'Everything in Pro',
        amount: 11000,
        tax_free_amount: 0,
        vat: 1000,
        supply_amount: 10000,
        currency: 'KRW',
        interval: 'month',
        interval_count: 1,
        trial_days: 0,
        charge_mode: 'scheduler',
        active: true,
        created_at: T0.toISOString(),
        updated_at: T0.toISOString(),
      });
      const got = await t.http.get(`/v1/plans/${res.body.id}`).set(bearer(t.serviceKey));
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
    });

    const vatCases: [string, number, number | undefined, number, number][] = [
      ['11,000 won', 11000, undefined, 1000, 10000],
      ['10,000 won (909.09 rounds down)', 10000, undefined, 909, 9091],
      ['10,000 won with 5,000 tax-free (454.5 rounds up)', 10000, 5000, 455, 4545],
      ['100 won (9.09)', 100, undefined, 9, 91],
      ['6 won (0.545 rounds up)', 6, undefined, 1, 5],
      ['5 won (0.4545 rounds down)', 5, undefined, 0, 5],
      ['an all tax-free plan', 10000, 10000, 0, 0],
    ];
    it.each(vatCases)('should show the VAT of %s as (amount - tax_free) / 11 rounded half up', async (_, amount, taxFree, vat, supply) => {
      const body: Record<string, unknown> = { name: 'VAT case', amount, interval: 'month' };
      if (taxFree !== undefined) body.tax_free_amount = taxFree;
      const res = await t.http.post('/v1/plans').set(bearer(t.adminKey)).send(body);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ amount, tax_free_amount: taxFree ?? 0, vat, supply_amount: supply });
      expect(res.body.tax_free_amount + res.body.supply_amount + res.body.vat).toBe(amount);
      const got = await t.http.get(`/v1/plans/${res.body.id}`).set(bearer(t.adminKey));
      expect(got.body).toMatchObject({ vat, supply_amount: supply });
    });

    it('should keep every term it was given: interval, interval_count, trial_days, charge_mode', async () => {
      const res = await t.http.post('/v1/plans').set(bearer(t.serviceKey)).send({
        name: ' Quarterly ',
        amount: 30000,
        tax_free_amount: 3000,
        currency: 'KRW',
        interval: 'month',
        interval_count: 3,
        trial_days: 14,
        charge_mode: 'reservation',
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        name: 'Quarterly',
        amount: 30000,
        tax_free_amount: 3000,
        vat: 2455,
        supply_amount: 24545,
        interval: 'month',
        interval_count: 3,
        trial_days: 14,
        charge_mode: 'reservation',
        active: true,
      });
      const stored = (
        await t.db.query('SELECT amount, tax_free_amount, interval, interval_count, trial_days, charge_mode, currency FROM plans WHERE id = $1', [res.body.id])
      ).rows[0];
      expect(stored).toEqual({
        amount: '30000',
        tax_free_amount: '3000',
        interval: 'month',
        interval_count: 3,
        trial_days: 14,
        charge_mode: 'reservation',
        currency: 'KRW',
      });
    });

    it('should accept the longest period of each unit (10 years)', async () => {
      for (const [interval, count] of [
        ['day', 3650],
        ['week', 520],
        ['month', 120],
        ['year', 10],
      ] as const) {
        const res = await t.http
          .post('/v1/plans')
          .set(bearer(t.adminKey))
          .send({ name: `max ${interval}`, amount: 1000, interval, interval_count: count });
        expect({ interval, status: res.status }).toEqual({ interval, status: 201 });
        expect(res.body.interval_count).toBe(count);
      }
    });

    it('should 404 an unknown plan and 400 an id that is not a UUID', async () => {
      const missing = await t.http.get('/v1/plans/00000000-0000-4000-8000-000000000000').set(bearer(t.serviceKey));
      expect(missing.status).toBe(404);
      expect(missing.body.code).toBe('plan_not_found');
      const bad = await t.http.get('/v1/plans/not-a-uuid').set(bearer(t.serviceKey));
      expect(bad.status).toBe(400);
      expect(bad.body.details).toEqual([{ field: 'id', message: 'id must be a UUID' }]);
    });

    it('should refuse a request without an API key', async () => {
      expect((await t.http.get('/v1/plans')).status).toBe(401);
      expect((await t.http.post('/v1/plans').send({ name: 'x', amount: 1000, interval: 'month' })).status).toBe(401);
    });
  });

  describe('list', () => {
    it('should filter by active and page through every plan exactly once', async () => {
      const a = await createPlan(t, { name: 'list A' });
      const b = await createPlan(t, { name: 'list B' });
      const c = await createPlan(t, { name: 'list C' });
      const off = await t.http.patch(`/v1/plans/${b.id}`).set(bearer(t.adminKey)).send({ active: false });
      expect(off.status).toBe(200);

      const collect = async (query: string) => {
        const seen: { id: string; active: boolean }[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res: { status: number; body: { data: { id: string; active: boolean }[]; has_more: boolean; next_cursor: string | null } } = await t.http
            .get(`/v1/plans?limit=2${query}${cursor ? `&cursor=${cursor}` : ''}`)
            .set(bearer(t.serviceKey));
          expect(res.status).toBe(200);
          expect(res.body.data.length).toBeLessThanOrEqual(2);
          expect(res.body.has_more).toBe(res.body.next_cursor !== null);
          seen.push(...res.body.data);
          cursor = res.body.next_cursor;
          pages += 1;
        } while (cursor && pages < 100);
        return seen;
      };

      const all = await collect('');
      const total = Number((await t.db.query('SELECT count(*)::int AS n FROM plans')).rows[0].n);
      expect(all).toHaveLength(total);
      expect(new Set(all.map((p) => p.id)).size).toBe(total);

      const active = await collect('&active=true');
      const inactive = await collect('&active=false');
      expect(active.every((p) => p.active === true)).toBe(true);
      expect(inactive.every((p) => p.active === false)).toBe(true);
      expect(active.map((p) => p.id)).toEqual(expect.arrayContaining([a.id, c.id]));
      expect(active.map((p) => p.id)).not.toContain(b.id);
      expect(inactive.map((p) => p.id)).toContain(b.id);
      expect(active.length + inactive.length).toBe(total);
    });

    it('should answer has_more false and no cursor on the last page', async () => {
      const res = await t.http.get('/v1/plans?limit=100').set(bearer(t.serviceKey));
      expect(res.status).toBe(200);
      expect(res.body.has_more).toBe(false);
      expect(res.body.next_cursor).toBeNull();
    });

    it.each([
      ['active=yes', 'active'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['cursor=%25%25', 'cursor'],
      ['cursor=abc', 'cursor'],
    ])('should refuse the query %s with 400 naming %s', async (query, field) => {
      const res = await t.http.get(`/v1/plans?${query}`).set(bearer(t.serviceKey));
      expect(res.status).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
    });
  });

  describe('update', () => {
    it('should change name, description and active, and nothing else', async () => {
      const plan = await createPlan(t, { name: 'Before', description: 'old words', amount: 22000, tax_free_amount: 2000 });
      const later = new Date(T0.getTime() + 3600_000);
      t.clock.set(later);
      try {
        const res = await t.http.patch(`/v1/plans/${plan.id}`).set(bearer(t.adminKey)).send({ name: 'After', description: 'new words', active: false });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({
          id: plan.id,
          name: 'After',
          description: 'new words',
          active: false,
          amount: 22000,
          tax_free_amount: 2000,
          vat: 1818,
          interval: 'month',
          updated_at: later.toISOString(),
          created_at: T0.toISOString(),
        });
        const cleared = await t.http.patch(`/v1/plans/${plan.id}`).set(bearer(t.adminKey)).send({ description: null, active: true });
        expect(cleared.status).toBe(200);
        expect(cleared.body).toMatchObject({ name: 'After', description: null, active: true });
        const got = await t.http.get(`/v1/plans/${plan.id}`).set(bearer(t.adminKey));
        expect(got.body).toEqual(cleared.body);
      } finally {
        t.clock.set(T0);
      }
    });

    const priceFields: [string, Record<string, unknown>][] = [
      ['amount', { amount: 99000 }],
      ['tax_free_amount', { tax_free_amount: 100 }],
      ['interval', { interval: 'year' }],
      ['interval_count', { interval_count: 2 }],
      ['trial_days', { trial_days: 30 }],
      ['currency', { currency: 'KRW' }],
      ['charge_mode', { charge_mode: 'reservation' }],
    ];
    it.each(priceFields)('should refuse a PATCH of %s with 400 naming it and leave the plan unchanged', async (field, body) => {
      const plan = await createPlan(t, { name: 'Fixed terms', amount: 11000 });
      const before = (await t.http.get(`/v1/plans/${plan.id}`).set(bearer(t.adminKey))).body;
      const res = await t.http
        .patch(`/v1/plans/${plan.id}`)
        .set(bearer(t.adminKey))
        .send({ name: 'Renamed', ...body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid_request');
      expect(res.body.details.map((d: { field: string }) => d.field)).toEqual([field]);
      const after = (await t.http.get(`/v1/plans/${plan.id}`).set(bearer(t.adminKey))).body;
      expect(after).toEqual(before);
      expect(after.amount).toBe(11000);
      expect(after.name).toBe('Fixed terms');
    });

    it.each([
      ['a blank name', { name: '   ' }, 'name'],
      ['a numeric name', { name: 5 }, 'name'],
      ['active as a string', { active: 'false' }, 'active'],
      ['a description over 1000 characters', { description: 'x'.repeat(1001) }, 'description'],
    ])('should refuse a PATCH with %s with 400 and leave the plan unchanged', async (_, body, field) => {
      const plan = await createPlan(t, { name: 'Stable' });
      const before = (await t.http.get(`/v1/plans/${plan.id}`).set(bearer(t.adminKey))).body;
      const res = await t.http.patch(`/v1/plans/${plan.id}`).set(bearer(t.adminKey)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      expect((await t.http.get(`/v1/plans/${plan.id}`).set(bearer(t.adminKey))).body).toEqual(before);
    });

    it('should keep renewing existing subscriptions of a deactivated plan, and refuse new ones with 422', async () => {
      const plan = await createPlan(t, { name: 'Legacy', amount: 7700 });
      const { customer, key } = await customerWithKey(t);
      const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
      expect(sub.status).toBe('active');
      expect((await t.http.patch(`/v1/plans/${plan.id}`).set(bearer(t.adminKey)).send({ active: false })).status).toBe(200);

      const refused = await t.http
        .post('/v1/subscriptions')
        .set(bearer(t.serviceKey))
        .send({ customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
      expect(refused.status).toBe(422);
      expect(refused.body.details).toEqual([{ field: 'plan_id', message: 'the plan is not active' }]);

      t.clock.set(new Date(sub.next_charge_at));
      try {
        await runCharges(t);
      } finally {
        t.clock.set(T0);
      }
      const renewed = (await t.http.get(`/v1/subscriptions/${sub.id}`).set(bearer(t.serviceKey))).body;
      expect(renewed).toMatchObject({
        status: 'active',
        plan_id: plan.id,
        current_period_start: sub.next_charge_at,
        latest_payment: { status: 'DONE', amount: 7700 },
      });
      expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([7700, 7700]);
    });

    it('should 404 a PATCH of an unknown plan', async () => {
      const res = await t.http.patch('/v1/plans/00000000-0000-4000-8000-000000000000').set(bearer(t.adminKey)).send({ name: 'x' });
      expect(res.status).toBe(404);
    });
  });

  describe('bad bodies', () => {
    const valid = { name: 'Pro', amount: 11000, interval: 'month' };
    const badBodies: [string, Record<string, unknown>, string][] = [
      ['a fractional amount', { ...valid, amount: 1000.5 }, 'amount'],
      ['a negative amount', { ...valid, amount: -1000 }, 'amount'],
      ['a zero amount', { ...valid, amount: 0 }, 'amount'],
      ['an amount as a string', { ...valid, amount: '11000' }, 'amount'],
      ['an amount over 100,000,000', { ...valid, amount: 100_000_001 }, 'amount'],
      ['a missing amount', { name: 'Pro', interval: 'month' }, 'amount'],
      ['tax_free_amount above the amount', { ...valid, amount: 10000, tax_free_amount: 10001 }, 'tax_free_amount'],
      ['a fractional tax_free_amount', { ...valid, tax_free_amount: 0.5 }, 'tax_free_amount'],
      ['a negative tax_free_amount', { ...valid, tax_free_amount: -1 }, 'tax_free_amount'],
      ['interval hour', { ...valid, interval: 'hour' }, 'interval'],
      ['a missing interval', { name: 'Pro', amount: 11000 }, 'interval'],
      ['interval_count 11 for a year', { ...valid, interval: 'year', interval_count: 11 }, 'interval_count'],
      ['interval_count 121 for a month', { ...valid, interval: 'month', interval_count: 121 }, 'interval_count'],
      ['interval_count 521 for a week', { ...valid, interval: 'week', interval_count: 521 }, 'interval_count'],
      ['interval_count 3651 for a day', { ...valid, interval: 'day', interval_count: 3651 }, 'interval_count'],
      ['interval_count 0', { ...valid, interval_count: 0 }, 'interval_count'],
      ['a fractional interval_count', { ...valid, interval_count: 1.5 }, 'interval_count'],
      ['currency USD', { ...valid, currency: 'USD' }, 'currency'],
      ['negative trial_days', { ...valid, trial_days: -1 }, 'trial_days'],
      ['charge_mode push', { ...valid, charge_mode: 'push' }, 'charge_mode'],
      ['a missing name', { amount: 11000, interval: 'month' }, 'name'],
      ['a blank name', { ...valid, name: '  ' }, 'name'],
      ['a name with a control character', { ...valid, name: 'Pro\u0007' }, 'name'],
      ['a name over 100 characters', { ...valid, name: 'x'.repeat(101) }, 'name'],
      ['an unknown field', { ...valid, price: 11000 }, 'price'],
      ['an active flag (new plans are always active)', { ...valid, active: false }, 'active'],
    ];
    it.each(badBodies)('should refuse %s with 400 naming the field and store nothing', async (_, body, field) => {
      const before = await tableCounts(t.db);
      const res = await t.http.post('/v1/plans').set(bearer(t.adminKey)).send(body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ status_code: 400, error: 'Bad Request', code: 'invalid_request' });
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      for (const d of res.body.details) expect(typeof d.message).toBe('string');
      expect(await tableCounts(t.db)).toEqual(before);
    });

    it('should name every bad field at once', async () => {
      const res = await t.http.post('/v1/plans').set(bearer(t.adminKey)).send({ name: 'Pro', amount: 1.5, interval: 'hour', currency: 'USD' });
      expect(res.status).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['amount', 'currency', 'interval']);
    });

    it('should say why an interval_count is too large for its unit', async () => {
      const res = await t.http
        .post('/v1/plans')
        .set(bearer(t.adminKey))
        .send({ ...valid, interval: 'year', interval_count: 11 });
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([{ field: 'interval_count', message: 'interval_count must be at most 10 for interval year' }]);
    });
  });
});
