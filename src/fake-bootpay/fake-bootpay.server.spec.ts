/** The fake Bootpay server over raw HTTP (the gateway specs drive it through the real SDK). */
import * as http from 'node:http';
import { DEFAULT_FAKE_CREDENTIALS, FakeBootpayServer, TEST_CARDS } from './fake-bootpay.server';

const T0 = new Date('2030-01-15T00:00:00.000Z');
const MINUTE = 60_000;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

function request(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: { 'content-type': 'application/json', ...(payload ? { 'content-length': String(Buffer.byteLength(payload)) } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const basic = `Basic ${Buffer.from(`${DEFAULT_FAKE_CREDENTIALS.clientKey}:${DEFAULT_FAKE_CREDENTIALS.secretKey}`).toString('base64')}`;

describe(FakeBootpayServer.name, () => {
  let now: Date;
  let sut: FakeBootpayServer;
  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: basic }) =>
    request(sut.url, method, path, body, headers);
  const card = (cardNo = '4579730000001234') => ({
    pg: 'nicepay',
    order_name: 'Pro',
    subscription_id: 'sub-1',
    card_no: cardNo,
    card_pw: '12',
    card_expire_year: '35',
    card_expire_month: '12',
    card_identity_no: '900101',
  });
  const issue = async (cardNo?: string): Promise<Record<string, unknown>> => {
    const res = await api('POST', '/v2/request/subscribe', card(cardNo));
    expect(res.status).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    now = T0;
    sut = new FakeBootpayServer({ now: () => now, webhookBaseDelayMs: 1, webhookMaxDelayMs: 10 });
    await sut.start(0);
  });

  beforeEach(() => {
    now = T0;
    sut.reset();
  });

  afterAll(async () => {
    await sut.stop();
    agent.destroy();
  });

  it('should expose its URLs and default credentials', () => {
    expect(sut.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sut.apiBaseUrl).toBe(`${sut.url}/v2`);
    expect(sut.credentials).toEqual(DEFAULT_FAKE_CREDENTIALS);
  });

  describe('auth', () => {
    it('should refuse requests without valid credentials', async () => {
      expect(await api('GET', '/v2/receipt/x', undefined, {})).toEqual({ status: 401, body: { error_code: 'TOKEN_KEY_INVALID', message: expect.any(String) } });
      const wrongCk = `Basic ${Buffer.from('nope:sk_test_fake').toString('base64')}`;
      expect((await api('GET', '/v2/receipt/x', undefined, { authorization: wrongCk })).body.error_code).toBe('APP_KEY_NOT_FOUND');
      const wrongSk = `Basic ${Buffer.from('ck_test_fake:nope').toString('base64')}`;
      expect((await api('GET', '/v2/receipt/x', undefined, { authorization: wrongSk })).body.error_code).toBe('APP_SK_NOT_MATCHED');
      expect((await api('GET', '/v2/receipt/x', undefined, { authorization: 'Bearer nope' })).status).toBe(401);
    });

    it('should give the same token for 25 minutes, a new one after, and refuse a token after 30 minutes', async () => {
      const creds = { application_id: DEFAULT_FAKE_CREDENTIALS.applicationId, private_key: DEFAULT_FAKE_CREDENTIALS.privateKey };
      const first = await request(sut.url, 'POST', '/v2/request/token', creds);
      expect(first).toEqual({ status: 200, body: { access_token: expect.any(String), expire_in: 1800 } });
      const bearer = { authorization: `Bearer ${String(first.body.access_token)}` };

      now = new Date(T0.getTime() + 24 * MINUTE);
      expect((await request(sut.url, 'POST', '/v2/request/token', creds)).body.access_token).toBe(first.body.access_token);
      expect((await api('GET', '/v2/receipt/ffffffffffffffffffffffff', undefined, bearer)).status).toBe(404);

      now = new Date(T0.getTime() + 26 * MINUTE);
      const second = await request(sut.url, 'POST', '/v2/request/token', creds);
      expect(second.body.access_token).not.toBe(first.body.access_token);
      expect((await api('GET', '/v2/receipt/ffffffffffffffffffffffff', undefined, bearer)).status).toBe(404);

      now = new Date(T0.getTime() + 30 * MINUTE);
      expect(await api('GET', '/v2/receipt/ffffffffffffffffffffffff', undefined, bearer)).toMatchObject({
        status: 401,
        body: { error_code: 'TOKEN_KEY_INVALID' },
      });

      expect((await request(sut.url, 'POST', '/v2/request/token', { ...creds, application_id: 'x' })).body.error_code).toBe('APP_KEY_NOT_FOUND');
      expect((await request(sut.url, 'POST', '/v2/request/token', { ...creds, private_key: 'x' })).body.error_code).toBe('APP_SK_NOT_MATCHED');
    });
  });

  it('should answer unknown routes with a 404 JSON error', async () => {
    expect(await api('GET', '/v2/nope')).toMatchObject({ status: 404, body: { error_code: 'ROUTE_NOT_FOUND' } });
    expect(await api('PUT', '/v2/subscribe/payment')).toMatchObject({ status: 404, body: { error_code: 'ROUTE_NOT_FOUND' } });
    expect(await api('GET', '/elsewhere')).toMatchObject({ status: 404, body: { error_code: 'ROUTE_NOT_FOUND' } });
    expect(await api('GET', '/__fake/nope')).toMatchObject({ status: 404 });
  });

  it('should issue Bootpay-like ids and masked card data', async () => {
    const bk = await issue('5111110000009876');
    expect(bk).toMatchObject({
      billing_key: expect.stringMatching(/^[A-Za-z0-9_-]{44}$/),
      receipt_id: expect.stringMatching(/^[0-9a-f]{24}$/),
      subscription_id: 'sub-1',
      status: 11,
      published_at: T0.toISOString(),
      billing_expire_at: '2035-12-31T14:59:59.000Z',
      billing_data: { card_no: '511111******9876', card_company: 'KB국민', card_company_code: '02', card_type: 0 },
    });
    expect((await issue('9411110000001111')).billing_data).toMatchObject({ card_company: 'BC' });
    expect((await issue('36111100000011')).billing_data).toMatchObject({ card_no: '361111****0011', card_company: '현대' });
  });

  it('should validate charge fields', async () => {
    const bk = await issue();
    const base = { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-1', price: 1000 };
    for (const body of [
      { ...base, price: 0 },
      { ...base, price: 10.5 },
      { ...base, price: '1000' },
      { ...base, tax_free: 1001 },
      { ...base, order_id: '' },
      { ...base, order_name: undefined },
    ]) {
      expect(await api('POST', '/v2/subscribe/payment', body)).toMatchObject({ status: 400, body: { error_code: 'RC_INVALID_PARAMETER' } });
    }
    expect(await api('POST', '/v2/subscribe/payment', { ...base, billing_key: 'unknown' })).toMatchObject({
      status: 404,
      body: { error_code: 'RC_NOT_FOUND' },
    });
    expect((await api('POST', '/v2/subscribe/payment', base)).status).toBe(200);
    expect(sut.ledger().charges).toHaveLength(1);
  });

  it('should refuse to confirm a billing receipt', async () => {
    const bk = await issue();
    const paid = await api('POST', '/v2/subscribe/payment', { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-1', price: 1000 });
    expect(await api('POST', '/v2/confirm', { receipt_id: paid.body.receipt_id })).toMatchObject({ status: 400, body: { error_code: 'RC_NOT_CONFIRM_READY' } });
    expect(await api('POST', '/v2/confirm', { receipt_id: 'ffffffffffffffffffffffff' })).toMatchObject({ status: 404 });
  });

  it('should accept reserve_execute_at in any ISO-8601 form and show the reservation', async () => {
    const bk = await issue();
    const res = await api('POST', '/v2/subscribe/payment/reserve', {
      billing_key: bk.billing_key,
      order_name: 'Pro',
      order_id: 'r-1',
      price: 9900,
      reserve_execute_at: '2030-01-15T18:00:00+09:00',
    });
    expect(res).toEqual({ status: 200, body: { reserve_id: expect.stringMatching(/^[0-9a-f]{24}$/), reserve_execute_at: '2030-01-15T09:00:00.000Z' } });
    const lookup = await api('GET', `/v2/subscribe/payment/reserve/${String(res.body.reserve_id)}`);
    expect(lookup.body).toMatchObject({
      reserve_id: res.body.reserve_id,
      order_id: 'r-1',
      price: 9900,
      status: 1,
      reserve_revoked_at: null,
      reserve_requested_at: T0.toISOString(),
    });
    expect(lookup.body).not.toHaveProperty('receipt_id');
    expect(lookup.body).not.toHaveProperty('billing_key');
    for (const at of ['2030-01-15', 'tomorrow', 12345]) {
      const bad = await api('POST', '/v2/subscribe/payment/reserve', {
        billing_key: bk.billing_key,
        order_name: 'Pro',
        order_id: 'r-2',
        price: 9900,
        reserve_execute_at: at,
      });
      expect(bad.status).toBe(400);
    }
  });

  describe('control API', () => {
    it('should serve health, cards and the ledger without full keys or card numbers', async () => {
      expect(await api('GET', '/__fake/health', undefined, {})).toMatchObject({ status: 200, body: { ok: true, now: T0.toISOString() } });
      expect((await api('GET', '/__fake/cards', undefined, {})).body.cards).toEqual(JSON.parse(JSON.stringify(TEST_CARDS)));
      const bk = await issue();
      await api('POST', '/v2/subscribe/payment', { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-1', price: 1000 });
      const ledger = await api('GET', '/__fake/ledger', undefined, {});
      expect(ledger.body).toMatchObject({
        charges: [{ order_id: 'o-1', billing_key_suffix: String(bk.billing_key).slice(-4), price: 1000, tax_free: 0, status: 1, source: 'charge' }],
        billing_keys: [{ receipt_id: bk.receipt_id, card_no_masked: '457973******1234', status: 'active' }],
        failed_charges: [],
        cancels: [],
        reservations: [],
        webhooks: [],
      });
      const text = JSON.stringify(ledger.body);
      expect(text).not.toContain(String(bk.billing_key));
      expect(text).not.toContain('4579730000001234');
    });

    it('should set and clear faults, and answer fail_next without doing anything', async () => {
      const bk = await issue();
      const set = await api('PUT', '/__fake/faults', { fail_next: { count: 2, status: 502, route: 'subscribe/payment' } }, {});
      expect(set).toMatchObject({ status: 200, body: { fail_next: { count: 2, status: 502, route: 'subscribe/payment' } } });
      // Another route is not affected.
      expect((await api('GET', '/v2/receipt/ffffffffffffffffffffffff')).status).toBe(404);
      const charge = { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-1', price: 1000 };
      expect(await api('POST', '/v2/subscribe/payment', charge)).toMatchObject({ status: 502, body: { error_code: 'BAD_GATEWAY' } });
      expect((await api('POST', '/v2/subscribe/payment', charge)).status).toBe(502);
      expect((await api('POST', '/v2/subscribe/payment', charge)).status).toBe(200);
      expect(sut.ledger().charges).toHaveLength(1);

      expect((await api('PUT', '/__fake/faults', { fail_next: { count: 1, status: 418 } }, {})).status).toBe(400);
      expect((await api('PUT', '/__fake/faults', { latency_ms: 30 }, {})).body).toEqual({ latency_ms: 30 });
      const started = Date.now();
      await api('GET', '/v2/receipt/ffffffffffffffffffffffff');
      expect(Date.now() - started).toBeGreaterThanOrEqual(25);
      expect((await api('PUT', '/__fake/faults', {}, {})).body).toEqual({});
    });

    it('should drop answers deterministically for a seeded rate', async () => {
      const pattern = async (): Promise<boolean[]> => {
        sut.reset();
        const bk = await issue();
        sut.setFaults({ timeout_after_charge: { rate: 0.5 }, seed: 42 });
        const out: boolean[] = [];
        for (let i = 0; i < 12; i++) {
          const dropped = await api('POST', '/v2/subscribe/payment', { billing_key: bk.billing_key, order_name: 'Pro', order_id: `o-${i}`, price: 1000 }).then(
            () => false,
            () => true,
          );
          out.push(dropped);
        }
        expect(sut.ledger().charges).toHaveLength(12);
        return out;
      };
      const first = await pattern();
      expect(first).toContain(true);
      expect(first).toContain(false);
      expect(await pattern()).toEqual(first);
    });

    it('should answer a seeded share of the filtered routes with a 5xx, doing nothing, and leave other routes alone', async () => {
      const bk = await issue();
      const charge = { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-rate', price: 1000 };
      const receipt = (await api('POST', '/v2/subscribe/payment', charge)).body;
      const reserve = await api('POST', '/v2/subscribe/payment/reserve', {
        ...charge,
        order_id: 'o-rate-r',
        reserve_execute_at: new Date(now.getTime() + 60 * MINUTE).toISOString(),
      });
      expect(reserve.status).toBe(200);
      const faults = { fail_rate: { rate: 0.5, status: 503 as const, route: ['GET receipt', 'GET subscribe/payment/reserve'] }, seed: 7 };
      const set = await api('PUT', '/__fake/faults', faults, {});
      expect(set).toMatchObject({ status: 200, body: { fail_rate: { rate: 0.5, status: 503, route: ['GET receipt', 'GET subscribe/payment/reserve'] } } });

      const pattern = async (): Promise<number[]> => {
        sut.setFaults(faults);
        const out: number[] = [];
        for (let i = 0; i < 20; i++) {
          const path = i % 2 ? `/v2/receipt/${String(receipt.receipt_id)}` : `/v2/subscribe/payment/reserve/${String(reserve.body.reserve_id)}`;
          const res = await api('GET', path);
          if (res.status !== 200) expect(res.body).toEqual({ error_code: 'SERVICE_UNAVAILABLE', message: expect.any(String), http_status: 503 });
          out.push(res.status);
        }
        return out;
      };
      const first = await pattern();
      expect(first).toContain(503);
      expect(first).toContain(200);
      expect(first.every((s) => s === 200 || s === 503)).toBe(true);
      expect(await pattern()).toEqual(first);

      // Other routes (a charge, a reservation revoke) are not affected, and a refused lookup changed nothing.
      for (let i = 0; i < 10; i++) expect((await api('POST', '/v2/subscribe/payment', { ...charge, order_id: `o-rate-${i}` })).status).toBe(200);
      expect((await api('DELETE', `/v2/subscribe/payment/reserve/${String(reserve.body.reserve_id)}`)).status).toBe(200);
      expect(sut.ledger().charges).toHaveLength(11);

      // Rate 1 on every route; a bad setting is refused; {} clears it.
      sut.setFaults({ fail_rate: { rate: 1 } });
      expect(await api('GET', `/v2/receipt/${String(receipt.receipt_id)}`)).toMatchObject({ status: 500, body: { error_code: 'SERVER_ERROR' } });
      expect((await api('POST', '/v2/subscribe/payment', { ...charge, order_id: 'o-rate-x' })).status).toBe(500);
      expect(sut.ledger().charges).toHaveLength(11);
      for (const bad of [{ rate: 2 }, { rate: 0.1, status: 418 }, { rate: 0.1, route: [] }, { rate: 0.1, route: [3] }, {}]) {
        expect((await api('PUT', '/__fake/faults', { fail_rate: bad }, {})).status).toBe(400);
      }
      expect((await api('PUT', '/__fake/faults', {}, {})).body).toEqual({});
      expect((await api('GET', `/v2/receipt/${String(receipt.receipt_id)}`)).status).toBe(200);
    });

    it('should switch a key behaviour, execute reservations and reset over HTTP', async () => {
      const bk = await issue();
      expect(await api('POST', `/__fake/billing-keys/${String(bk.receipt_id)}/behavior`, { decline: 'suspended' }, {})).toMatchObject({ status: 200 });
      const declined = await api('POST', '/v2/subscribe/payment', { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-1', price: 1000 });
      expect(declined).toMatchObject({ status: 400, body: { error_code: 'RC_CONFIRM_FAILED', pg_error_code: 'F062', message: '거래정지카드' } });
      expect((await api('POST', `/__fake/billing-keys/${String(bk.receipt_id)}/behavior`, { decline: 'nope' }, {})).status).toBe(400);
      expect((await api('POST', '/__fake/billing-keys/ffffffffffffffffffffffff/behavior', { decline: null }, {})).status).toBe(404);
      await api('POST', `/__fake/billing-keys/${String(bk.receipt_id)}/behavior`, { decline: null }, {});

      await api('POST', '/v2/subscribe/payment/reserve', {
        billing_key: bk.billing_key,
        order_name: 'Pro',
        order_id: 'r-1',
        price: 9900,
        reserve_execute_at: '2030-01-16T00:00:00Z',
      });
      expect((await api('POST', '/__fake/reservations/execute', {}, {})).body).toEqual({ executions: [] });
      const executed = await api('POST', '/__fake/reservations/execute', { now: '2030-01-16T00:00:00Z' }, {});
      expect(executed.body).toEqual({ executions: [expect.objectContaining({ order_id: 'r-1', result: 'success', reservation_status: 3 })] });
      const receiptId = String((executed.body.executions as Array<Record<string, unknown>>)[0].receipt_id);
      expect((await api('GET', `/v2/receipt/${receiptId}?lookup_user_data=true`)).body).toMatchObject({ order_id: 'r-1', status: 1, user: {} });
      // An executed reservation cannot be revoked.
      const reserveId = sut.ledger().reservations[0].reserve_id;
      expect(await api('DELETE', `/v2/subscribe/payment/reserve/${reserveId}`)).toMatchObject({ status: 400, body: { error_code: 'RC_RESERVE_ALREADY_DONE' } });

      expect((await api('PUT', '/__fake/clock', { advance_ms: 3600_000 }, {})).body).toMatchObject({ now: '2030-01-15T01:00:00.000Z' });
      expect((await api('POST', '/__fake/reset', {}, {})).status).toBe(200);
      expect(sut.ledger()).toEqual({ charges: [], failed_charges: [], cancels: [], reservations: [], billing_keys: [], webhooks: [] });
      expect((await api('GET', '/__fake/health', undefined, {})).body.now).toBe(T0.toISOString());
    });

    it('should give up on a webhook after the retries and record every attempt', async () => {
      const got: number[] = [];
      const receiver = http.createServer((req, res) => {
        got.push(Date.now());
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"success":false}');
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
      const port = (receiver.address() as { port: number }).port;
      try {
        expect((await api('PUT', '/__fake/webhook-url', { url: `http://127.0.0.1:${port}/hook` }, {})).status).toBe(200);
        const bk = await issue();
        await api('POST', '/v2/subscribe/payment', { billing_key: bk.billing_key, order_name: 'Pro', order_id: 'o-1', price: 1000 });
        await sut.webhooksIdle();
        const [hook] = sut.ledger().webhooks;
        expect(hook).toMatchObject({ webhook_type: 'PAYMENT_COMPLETED', attempts: 11, delivered: false, done: true });
        expect(hook.history).toHaveLength(11);
        expect(got).toHaveLength(11);
      } finally {
        await new Promise<void>((r) => {
          receiver.close(() => r());
          receiver.closeAllConnections();
        });
      }
    });
  });

  it('should keep up with hundreds of concurrent keep-alive requests', async () => {
    const bk = await issue();
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        api('POST', '/v2/subscribe/payment', { billing_key: bk.billing_key, order_name: 'Pro', order_id: `bulk-${i}`, price: 1000 }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(sut.ledger().charges).toHaveLength(400);
  });
});
