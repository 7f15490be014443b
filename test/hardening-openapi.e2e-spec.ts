/**
 * Issue 11: the OpenAPI document is the contract. Every operation lists its error answers with the error schema and
 * the constraints the server enforces; every answer this walk through the API gets (and every answer the fuzzer in
 * fuzz.e2e-spec.ts gets) is one the document lists, in the shape it gives.
 */
import { createBillingKey, createCustomer, createPlan, GOOD_CARD } from './utils/fixtures';
import { OpenApiContract } from './utils/openapi-contract';
import { bearer, startTestApp, TestApp } from './utils/test-app';

type Op = {
  parameters?: { in: string; name: string; schema?: { format?: string } }[];
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  security?: unknown[];
};

/**
 * Success answers that are free-form on purpose (their schema a bare object), each with the reason. None today: even
 * GET /health has a fixed shape. Free-form values inside an answer (metadata, a flag's data) are properties of it.
 */
const FREE_FORM: Record<string, string> = {};

describe('Hardening: the OpenAPI document is the contract', () => {
  let t: TestApp;
  let contract: OpenApiContract;
  let doc: { paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, { additionalProperties?: unknown }> } };
  const ops = () => Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

  beforeAll(async () => {
    t = await startTestApp();
    doc = (await t.http.get('/docs/openapi.json')).body;
    contract = new OpenApiContract(doc as never);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should list the error answers of every operation, with the common error schema', () => {
    const missing: string[] = [];
    for (const { path, method, op } of ops()) {
      const want = new Set<string>();
      if (path !== '/health') want.add('400');
      if ((op.security ?? []).length) ['401', '403'].forEach((s) => want.add(s));
      if (path.includes('{')) want.add('404');
      if (method !== 'get') ['409', '422'].forEach((s) => want.add(s));
      for (const s of want) {
        const schema = op.responses[s]?.content?.['application/json']?.schema as { $ref?: string } | undefined;
        if (schema?.$ref !== '#/components/schemas/ErrorBody') missing.push(`${method.toUpperCase()} ${path} ${s}`);
      }
    }
    expect(missing).toEqual([]);
    expect(doc.paths['/v1/subscriptions'].post.responses['402']).toBeDefined();
    expect(doc.paths['/v1/webhooks/bootpay'].post.responses['429']).toBeDefined();
    expect(doc.paths['/v1/webhooks/bootpay'].post.responses['503']).toBeDefined();
  });

  it('should give every answer a schema, UUID path ids, and bodies that refuse unknown fields', () => {
    const problems: string[] = [];
    for (const { path, method, op } of ops()) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (status !== '204' && !r.content?.['application/json']?.schema) problems.push(`${method} ${path} ${status}: no schema`);
      }
      for (const p of op.parameters ?? []) if (p.in === 'path' && p.schema?.format !== 'uuid') problems.push(`${method} ${path}: path ${p.name} is not a uuid`);
      const ref = op.requestBody?.content?.['application/json']?.schema?.$ref;
      if (ref) {
        const schema = doc.components.schemas[ref.replace('#/components/schemas/', '')];
        if (schema.additionalProperties !== false) problems.push(`${method} ${path}: body ${ref} allows unknown fields`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('should type every field of every request body and query (no field shown as a bare object)', () => {
    type Prop = { type?: string; $ref?: string; properties?: object; additionalProperties?: unknown; allOf?: unknown[]; oneOf?: unknown[]; enum?: unknown[] };
    const bare = (p: Prop | undefined) =>
      !p || (!p.$ref && !p.allOf && !p.oneOf && !p.enum && (!p.type || (p.type === 'object' && !p.properties && !p.additionalProperties)));
    const problems: string[] = [];
    for (const { path, method, op } of ops()) {
      const ref = op.requestBody?.content?.['application/json']?.schema?.$ref;
      if (ref) {
        const name = ref.replace('#/components/schemas/', '');
        for (const [field, prop] of Object.entries((doc.components.schemas[name] as { properties?: Record<string, Prop> }).properties ?? {})) {
          if (bare(prop)) problems.push(`${method.toUpperCase()} ${path}: body field ${name}.${field}`);
        }
      }
      for (const q of op.parameters ?? []) if (q.in === 'query' && bare(q.schema as Prop)) problems.push(`${method.toUpperCase()} ${path}: query ${q.name}`);
    }
    expect(problems).toEqual([]);
  });

  it('should describe every success answer with a schema of its own (no bare objects)', () => {
    const bare: string[] = [];
    const described = (schema: { $ref?: string; properties?: object; items?: object; allOf?: unknown[] } | undefined) =>
      !!schema && (!!schema.$ref || !!schema.properties || !!schema.items || !!schema.allOf);
    for (const { path, method, op } of ops()) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (Number(status) >= 300 || status === '204') continue;
        const schema = r.content?.['application/json']?.schema as Parameters<typeof described>[0];
        if (!described(schema) && !FREE_FORM[`${method.toUpperCase()} ${path}`]) bare.push(`${method.toUpperCase()} ${path} ${status}`);
      }
    }
    expect(bare).toEqual([]);
  });

  it('should find drift: an unlisted status or a body of another shape is reported', () => {
    expect(contract.operation('GET', '/v1/customers/00000000-0000-4000-8000-000000000000')).toEqual({ template: '/v1/customers/{id}', method: 'GET' });
    expect(contract.check('GET', '/v1/customers', 418, {})).toEqual([expect.stringContaining('418 is not listed')]);
    expect(contract.check('GET', '/v1/customers', 401, { status_code: 401 })).toEqual(expect.arrayContaining([expect.stringContaining('has no code')]));
    expect(contract.check('GET', '/v1/customers', 200, { data: 'x', has_more: false, next_cursor: null })).toEqual([expect.stringContaining('is not array')]);
    const customer = {
      id: '00000000-0000-4000-8000-000000000000',
      external_id: 'user_1',
      name: 'Name',
      email: null,
      phone: null,
      metadata: {},
      created_at: '2026-01-15T01:00:00.000Z',
      updated_at: '2026-01-15T01:00:00.000Z',
    };
    const path = `/v1/customers/${customer.id}`;
    expect(contract.check('GET', path, 200, customer)).toEqual([]);
    const { name: _name, ...nameless } = customer;
    expect(contract.check('GET', path, 200, nameless)).toEqual([expect.stringContaining('has no name')]);
    expect(contract.check('GET', path, 200, { ...customer, name: 42 })).toEqual([expect.stringContaining('$.name: 42 is not string')]);
    expect(contract.check('GET', path, 200, { ...customer, external_id: null })).toEqual([expect.stringContaining('$.external_id: null where string')]);
    expect(contract.check('GET', path, 200, { ...customer, nickname: 'x' })).toEqual([expect.stringContaining('unexpected field nickname')]);
    // Through a $ref, an array and a nullable $ref (allOf): a summary's reconciliation state.
    const summary = {
      currency: 'KRW',
      mrr: 0,
      active: 0,
      counts_by_status: { active: 1 },
      churned: 0,
      recovered_by_retry: [{ attempt: 2, retry_step: 1, payments: 1, amount: '1000' }],
      from: '2026-01-15T01:00:00.000Z',
      to: '2026-01-15T01:00:00.000Z',
      reconciliation: { last_run: null, persistent_differences: [] },
    };
    expect(contract.check('GET', '/v1/reports/summary', 200, summary)).toEqual([
      expect.stringContaining('$.recovered_by_retry[0].amount: "1000" is not integer'),
    ]);
    expect(contract.check('GET', '/v1/reports/summary', 200, { ...summary, reconciliation: { last_run: {}, persistent_differences: [] } })).toEqual(
      expect.arrayContaining([expect.stringContaining('$.reconciliation.last_run: has no id')]),
    );
  });

  it('should answer the way the document says through a walk over the API', async () => {
    const S = bearer(t.serviceKey);
    const A = bearer(t.adminKey);
    const seen: string[] = [];
    const problems: string[] = [];
    const call = async (method: 'get' | 'post' | 'patch' | 'delete', path: string, auth?: Record<string, string>, body?: object) => {
      let req = t.http[method](path);
      if (auth) req = req.set(auth);
      const res = body === undefined ? await req : await req.send(body);
      seen.push(`${method.toUpperCase()} ${path} ${res.status}`);
      problems.push(...contract.check(method, path, res.status, res.body));
      return res;
    };

    await call('get', '/health');
    await call('post', '/v1/customers', S, { external_id: 'contract-1', name: 'Contract' });
    await call('post', '/v1/customers', S, { external_id: 'contract-1', name: 'Contract' });
    const customer = await createCustomer(t);
    await call('get', `/v1/customers/${customer.id}`, S);
    await call('get', '/v1/customers?limit=1', S);
    await call('patch', `/v1/customers/${customer.id}`, S, { name: 'Renamed' });
    await call('get', '/v1/customers/00000000-0000-4000-8000-000000000000', S);
    await call('get', '/v1/customers/not-a-uuid', S);
    await call('get', '/v1/customers');
    const key = await createBillingKey(t, customer.id);
    await call('get', `/v1/customers/${customer.id}/billing-keys`, S);
    await call('get', `/v1/billing-keys/${key.id}`, S);
    await call('get', `/v1/billing-keys/${key.id}/reservations`, S);
    await call('post', `/v1/customers/${customer.id}/billing-keys`, S, {
      pg: 'nicepay',
      card_no: '4111110000000054',
      card_pw: '12',
      card_expire_year: '30',
      card_expire_month: '12',
      card_identity_no: '900101',
    });
    const plan = await createPlan(t);
    const yearly = await call('post', '/v1/plans', S, { name: 'Contract yearly', amount: 110000, interval: 'year' });
    await call('get', '/v1/plans', S);
    await call('get', `/v1/plans/${plan.id}`, S);
    await call('patch', `/v1/plans/${plan.id}`, A, { description: 'd' });
    const sub = await call('post', '/v1/subscriptions', S, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    await call('post', '/v1/subscriptions', S, { customer_id: customer.id, plan_id: '00000000-0000-4000-8000-000000000000', billing_key_id: key.id });
    await call('get', `/v1/subscriptions/${sub.body.id}`, S);
    await call('get', `/v1/subscriptions?customer_id=${customer.id}`, S);
    await call('get', `/v1/subscriptions/${sub.body.id}/events`, S);
    await call('post', `/v1/subscriptions/${sub.body.id}/pause`, S, { reason: 'x' });
    await call('post', `/v1/subscriptions/${sub.body.id}/pause`, A, { reason: 'x' });
    await call('post', `/v1/subscriptions/${sub.body.id}/resume`, A, {});
    await call('post', `/v1/subscriptions/${sub.body.id}/reactivate`, S, {});
    await call('post', `/v1/subscriptions/${sub.body.id}/change-plan`, S, { plan_id: yearly.body.id, proration: 'period_end' });
    const other = await createBillingKey(t, customer.id, { card_no: '5555444433331111' });
    await call('post', `/v1/subscriptions/${sub.body.id}/billing-key`, S, { billing_key_id: other.id });
    await call('post', `/v1/subscriptions/${sub.body.id}/retry`, A, {});
    await call('delete', `/v1/billing-keys/${key.id}`, S);
    const payments = await call('get', `/v1/payments?subscription_id=${sub.body.id}`, S);
    const paymentId = payments.body.data[0].id;
    await call('get', `/v1/payments/${paymentId}`, S);
    await call('post', `/v1/payments/${paymentId}/refunds`, A, { amount: 1000, reason: 'partial' });
    await call('post', `/v1/payments/${paymentId}/refunds`, A, { amount: 100_000_000, reason: 'too much' });
    await call('get', `/v1/payments/${paymentId}/refunds`, A);
    await call('post', `/v1/subscriptions/${sub.body.id}/cancel`, S, { at_period_end: false, reason: 'done' });
    await call('post', `/v1/subscriptions/${sub.body.id}/cancel`, S, { at_period_end: false, reason: 'again' });
    const run = await call('post', '/v1/charge-runs', A, { wait: true });
    await call('get', '/v1/charge-runs', A);
    await call('get', `/v1/charge-runs/${run.body.id}`, A);
    const endpoint = await call('post', '/v1/webhook-endpoints', A, { url: 'https://hooks.example.com/contract' });
    await call('get', '/v1/webhook-endpoints', A);
    await call('get', `/v1/webhook-endpoints/${endpoint.body.id}`, A);
    await call('patch', `/v1/webhook-endpoints/${endpoint.body.id}`, A, { description: 'x' });
    await call('post', `/v1/webhook-endpoints/${endpoint.body.id}/rotate-secret`, A, {});
    await call('get', `/v1/webhook-endpoints/${endpoint.body.id}/deliveries`, A);
    await call('post', '/v1/webhook-deliveries/00000000-0000-4000-8000-000000000000/resend', A, {});
    await call('get', '/v1/reports/reconciliation?date=2026-01-15', A);
    await call('get', '/v1/reports/summary', A);
    await call('get', '/v1/test/clock', S);
    await call('post', '/v1/test/clock', A, { now: '2026-01-15T01:00:00.000Z' });
    await call('post', '/v1/webhooks/bootpay', undefined, { receipt_id: 'unknown-receipt-000' });
    await call('post', '/v1/webhooks/bootpay', undefined, { receipt_id: '!' });

    // Operations the walk does not know (added since) are called too: without a key (401), so nothing is set going.
    const reached = () =>
      new Set(
        seen.map((x) => {
          const [m, p] = x.split(' ');
          const op = contract.operation(m, p);
          return op ? `${op.method} ${op.template}` : x;
        }),
      );
    const done = reached();
    for (const { path, method } of ops()) {
      if (done.has(`${method.toUpperCase()} ${path}`)) continue;
      const concrete = path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
      await call(method as 'get', concrete, undefined, method === 'get' || method === 'delete' ? undefined : {});
    }
    expect(problems).toEqual([]);
    const all = ops().map(({ path, method }) => `${method.toUpperCase()} ${path}`);
    expect(all.filter((o) => !reached().has(o))).toEqual([]);
  });

  it('should answer in the documented shape where the first walk gets no success: consents, migrations, runs, flags', async () => {
    const S = bearer(t.serviceKey);
    const A = bearer(t.adminKey);
    const succeeded = new Set<string>();
    const problems: string[] = [];
    const call = async (method: 'get' | 'post', path: string, auth: Record<string, string>, body?: object) => {
      const req = t.http[method](path).set(auth);
      const res = body === undefined ? await req : await req.send(body);
      const op = contract.operation(method, path);
      if (op && res.status < 300) succeeded.add(`${op.method} ${op.template}`);
      problems.push(...contract.check(method, path, res.status, res.body));
      return res;
    };
    const now = (await call('get', '/v1/test/clock', S)).body.now as string;
    const customer = await createCustomer(t);
    const key = (await call('post', `/v1/customers/${customer.id}/billing-keys`, S, GOOD_CARD)).body;
    // A trial: its paid conversion is consented to, then the consent is withdrawn.
    const trialPlan = await createPlan(t, { name: 'Contract trial', trial_days: 14 });
    const trial = await call('post', '/v1/subscriptions', S, { customer_id: customer.id, plan_id: trialPlan.id, billing_key_id: key.id });
    const consent = await call('post', `/v1/subscriptions/${trial.body.id}/consents`, S, {
      kind: 'trial_conversion',
      obtained_at: now,
      channel: 'web',
      evidence: 'notice v1',
    });
    await call('get', `/v1/subscriptions/${trial.body.id}/consents`, S);
    await call('post', `/v1/subscriptions/${trial.body.id}/consents/${consent.body.id}/withdraw`, S, { reason: 'changed my mind' });
    // A price increase: the plan's subscriptions move to a dearer plan.
    const cheap = await createPlan(t, { name: 'Contract basic', amount: 5500 });
    const dear = await createPlan(t, { name: 'Contract premium', amount: 33000 });
    const sub = await call('post', '/v1/subscriptions', S, { customer_id: customer.id, plan_id: dear.id, billing_key_id: key.id });
    const migration = await call('post', `/v1/plans/${trialPlan.id}/migrations`, A, {
      to_plan_id: dear.id,
      effective_at: new Date(Date.parse(now) + 24 * 3600_000).toISOString(),
    });
    await call('get', `/v1/plans/${trialPlan.id}/migrations/${migration.body.id}`, A);
    await call('get', '/v1/reports/consents', A);
    await call('post', '/v1/consent-notices/runs', A, {});
    // A cancel at period end undone; a downgrade now leaves a credit, refunded to the card.
    await call('post', `/v1/subscriptions/${sub.body.id}/cancel`, S, { at_period_end: true, reason: 'moving' });
    await call('post', `/v1/subscriptions/${sub.body.id}/reactivate`, S, {});
    await call('post', `/v1/subscriptions/${sub.body.id}/change-plan`, S, { plan_id: cheap.id, proration: 'now' });
    await call('post', `/v1/subscriptions/${sub.body.id}/refund-credit`, A, { reason: 'customer asked' });
    // Reconciliation runs, finance flags, and a webhook delivery sent again.
    const run = await call('post', '/v1/reports/reconciliation/runs', A, { wait: true });
    await call('get', '/v1/reports/reconciliation/runs', A);
    await call('get', `/v1/reports/reconciliation/runs/${run.body.id}`, A);
    const [flag] = (
      await t.db.query(
        `INSERT INTO finance_flags (kind, subscription_id, payment_id, message, data, created_at) VALUES ($1, $2, NULL, $3, $4, now()) RETURNING id`,
        ['refund_outside', sub.body.id, 'A refund made at Bootpay', JSON.stringify({ amount: 1000 })],
      )
    ).rows;
    await call('get', '/v1/finance-flags', A);
    await call('post', `/v1/finance-flags/${flag.id}/resolve`, A, { resolution: 'checked' });
    const endpoints = await call('get', '/v1/webhook-endpoints', A);
    for (const e of endpoints.body.data as { id: string }[]) {
      const deliveries = await call('get', `/v1/webhook-endpoints/${e.id}/deliveries`, A);
      if (deliveries.body.data?.length) await call('post', `/v1/webhook-deliveries/${deliveries.body.data[0].id}/resend`, A, {});
    }
    expect(problems).toEqual([]);
    expect(
      [
        'POST /v1/customers/{id}/billing-keys',
        'POST /v1/subscriptions/{id}/consents',
        'GET /v1/subscriptions/{id}/consents',
        'POST /v1/subscriptions/{id}/consents/{consentId}/withdraw',
        'POST /v1/plans/{id}/migrations',
        'GET /v1/plans/{id}/migrations/{migrationId}',
        'GET /v1/reports/consents',
        'POST /v1/consent-notices/runs',
        'POST /v1/subscriptions/{id}/reactivate',
        'POST /v1/subscriptions/{id}/refund-credit',
        'POST /v1/reports/reconciliation/runs',
        'GET /v1/reports/reconciliation/runs',
        'GET /v1/reports/reconciliation/runs/{id}',
        'GET /v1/finance-flags',
        'POST /v1/finance-flags/{id}/resolve',
        'POST /v1/webhook-deliveries/{id}/resend',
      ].filter((o) => !succeeded.has(o)),
    ).toEqual([]);
  });
});
