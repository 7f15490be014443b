/**
 * The gateway driving the REAL @bootpay/backend-js SDK over HTTP against the fake Bootpay server (no SDK mocks).
 * BootpayGateway (the Nest injectable) is a thin subclass of BootpayGatewayCore, so the core is what is tested here.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TestClock } from '../common/clock';
import { FakeBootpayServer, TEST_CARDS } from '../fake-bootpay/fake-bootpay.server';
import { BootpayGatewayCore } from './bootpay-gateway.core';
import {
  GatewayAlreadyCancelledError,
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayRequestError,
  GatewayReservationAlreadyDoneError,
  GatewayReservationLimitError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
} from './gateway.errors';
import type { BillingKeyInfo, GatewayConfig, IssueBillingKeyParams } from './gateway.types';

const T0 = new Date('2030-01-15T00:00:00.000Z');
const GOOD_CARD = '4579730000001234';
const MINUTE = 60_000;

interface Receiver {
  url: string;
  received: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A webhook receiver answering with the scripted responses in turn (the last one repeats). */
async function startReceiver(script: Array<{ status: number; body: string }>): Promise<Receiver> {
  const received: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      const answer = script[Math.min(received.length - 1, script.length - 1)];
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/bootpay`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function caught(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error('expected a GatewayError');
}

function issueParams(cardNo = GOOD_CARD, subscriptionId = 'sub-1'): IssueBillingKeyParams {
  return {
    pg: 'nicepay',
    cardNo,
    cardPw: '12',
    cardExpireYear: '35',
    cardExpireMonth: '12',
    cardIdentityNo: '900101',
    orderName: 'Pro plan',
    subscriptionId,
  };
}

describe(BootpayGatewayCore.name, () => {
  let clock: TestClock;
  let fake: FakeBootpayServer;
  const gateways: BootpayGatewayCore[] = [];
  let sut: BootpayGatewayCore;
  let seq = 0;
  const orderId = (): string => `order-${++seq}`;

  function gateway(overrides: Partial<GatewayConfig> = {}, gatewayClock = clock): BootpayGatewayCore {
    const g = new BootpayGatewayCore(
      {
        clientKey: fake.credentials.clientKey,
        secretKey: fake.credentials.secretKey,
        mode: 'development',
        apiBaseUrl: fake.apiBaseUrl,
        timeoutMs: 2000,
        chargeTimeoutMs: 3000,
        ...overrides,
      },
      gatewayClock,
    );
    gateways.push(g);
    return g;
  }

  function legacyGateway(overrides: Partial<GatewayConfig> = {}, gatewayClock = clock): BootpayGatewayCore {
    return gateway(
      { clientKey: undefined, secretKey: undefined, applicationId: fake.credentials.applicationId, privateKey: fake.credentials.privateKey, ...overrides },
      gatewayClock,
    );
  }

  async function issue(cardNo = GOOD_CARD): Promise<BillingKeyInfo> {
    return sut.issueBillingKey(issueParams(cardNo));
  }

  beforeAll(async () => {
    clock = new TestClock();
    clock.set(T0);
    fake = new FakeBootpayServer({ now: () => clock.now(), webhookBaseDelayMs: 5 });
    await fake.start(0);
  });

  beforeEach(() => {
    clock.set(T0);
    fake.reset();
    sut = gateway();
  });

  afterAll(async () => {
    for (const g of gateways) g.close();
    await fake.stop();
  });

  describe('billing keys', () => {
    it('should issue, look up (by receipt and by key) and destroy a billing key', async () => {
      const info = await issue();
      expect(info).toEqual({
        billingKey: expect.stringMatching(/^[A-Za-z0-9_-]{44}$/),
        receiptId: expect.stringMatching(/^[0-9a-f]{24}$/),
        pg: 'nicepay',
        method: '카드자동',
        cardCompany: '신한',
        cardCompanyCode: expect.any(String),
        cardNoMasked: '457973******1234',
        cardType: 0,
        publishedAt: T0,
        expiresAt: expect.any(Date),
      });
      expect(info.expiresAt!.toISOString()).toBe('2035-12-31T14:59:59.000Z');

      await expect(sut.lookupBillingKeyByReceipt(info.receiptId)).resolves.toEqual(info);
      await expect(sut.lookupBillingKey(info.billingKey)).resolves.toEqual(info);

      await expect(sut.destroyBillingKey(info.billingKey)).resolves.toEqual({ alreadyDestroyed: false });
      await expect(sut.destroyBillingKey(info.billingKey)).resolves.toEqual({ alreadyDestroyed: true });

      const errors = await Promise.all([
        caught(sut.lookupBillingKey(info.billingKey)),
        caught(sut.lookupBillingKeyByReceipt(info.receiptId)),
        caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 })),
        caught(
          sut.reserve({
            billingKey: info.billingKey,
            orderId: orderId(),
            orderName: 'Pro',
            price: 1000,
            taxFree: 0,
            executeAt: new Date(T0.getTime() + MINUTE),
          }),
        ),
      ]);
      for (const e of errors) {
        expect(e).toBeInstanceOf(GatewayInvalidBillingKeyError);
        expect(e.code).toBe('SUBSCRIBE_BK_EXPIRED');
        expect(e.retryable).toBe(false);
      }
      expect(fake.ledger().billing_keys).toEqual([
        expect.objectContaining({ receipt_id: info.receiptId, status: 'destroyed', destroyed_at: T0.toISOString(), card_no_masked: '457973******1234' }),
      ]);
    });

    it('should map unknown keys, unknown receipts and payment receipts to typed errors', async () => {
      const info = await issue();
      const receipt = await sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 });

      const unknownKey = await caught(sut.lookupBillingKey('no-such-billing-key'));
      expect(unknownKey).toBeInstanceOf(GatewayInvalidBillingKeyError);
      expect(unknownKey.code).toBe('RC_NOT_FOUND');
      const unknownReceipt = await caught(sut.lookupBillingKeyByReceipt('ffffffffffffffffffffffff'));
      expect(unknownReceipt).toBeInstanceOf(GatewayNotFoundError);
      const notSubscribe = await caught(sut.lookupBillingKeyByReceipt(receipt.receiptId));
      expect(notSubscribe).toBeInstanceOf(GatewayRequestError);
      expect(notSubscribe.code).toBe('RC_NOT_SUBSCRIBE');
      expect(await caught(sut.getReceipt('ffffffffffffffffffffffff'))).toBeInstanceOf(GatewayNotFoundError);
      const destroyUnknown = await caught(sut.destroyBillingKey('no-such-billing-key'));
      expect(destroyUnknown).toBeInstanceOf(GatewayInvalidBillingKeyError);
    });

    it.each([
      ['invalid card number (test card)', { cardNo: '4111110000000014' }, 'SUBSCRIBE_PUBLISH_FAILED', 'F014'],
      ['expired card (test card)', { cardNo: '4111110000000054' }, 'SUBSCRIBE_PUBLISH_FAILED', 'F054'],
      ['card number too short', { cardNo: '4111110000000' }, 'SUBSCRIBE_PUBLISH_FAILED', 'F014'],
      ['expiry in the past', { cardExpireYear: '29', cardExpireMonth: '12' }, 'SUBSCRIBE_PUBLISH_FAILED', 'F054'],
      ['expiry month 13', { cardExpireMonth: '13' }, 'RC_INVALID_EXP_MONTH', undefined],
      ['card password of 3 digits', { cardPw: '123' }, 'SUBSCRIBE_PUBLISH_FAILED', 'F055'],
      ['identity number of 7 digits', { cardIdentityNo: '9001011' }, 'SUBSCRIBE_PUBLISH_FAILED', 'F056'],
    ])('should refuse to issue with %s as a hard decline', async (_name, overrides, code, pgCode) => {
      const params = { ...issueParams(), ...overrides };
      const err = await caught(sut.issueBillingKey(params));
      expect(err).toBeInstanceOf(GatewayDeclinedError);
      expect((err as GatewayDeclinedError).hard).toBe(true);
      expect(err.code).toBe(code);
      expect(err.pgCode).toBe(pgCode);
      expect(err.message).not.toContain(params.cardNo);
      expect(JSON.stringify(err)).not.toContain(params.cardNo);
      expect(fake.ledger().billing_keys).toHaveLength(0);
    });

    it('should accept a 10-digit business number as card identity', async () => {
      await expect(sut.issueBillingKey({ ...issueParams(), cardIdentityNo: '1234567890' })).resolves.toMatchObject({ cardNoMasked: '457973******1234' });
    });
  });

  describe('charges', () => {
    it('should charge and return a typed receipt, the same one getReceipt returns', async () => {
      const info = await issue();
      const id = orderId();
      const receipt = await sut.charge({
        billingKey: info.billingKey,
        orderId: id,
        orderName: 'Pro plan 2030-01',
        price: 11000,
        taxFree: 1000,
        metadata: { subscription_id: 'sub-1' },
      });
      expect(receipt).toEqual({
        receiptId: expect.stringMatching(/^[0-9a-f]{24}$/),
        orderId: id,
        orderName: 'Pro plan 2030-01',
        price: 11000,
        taxFree: 1000,
        cancelledPrice: 0,
        cancelledTaxFree: 0,
        status: 1,
        statusLocale: '결제완료',
        purchasedAt: T0,
        requestedAt: T0,
        cancelledAt: null,
        cardApproveNo: expect.stringMatching(/^\d{8}$/),
        cardNoMasked: '457973******1234',
        cardCompany: '신한',
        receiptUrl: expect.stringContaining(receipt.receiptId),
        metadata: { subscription_id: 'sub-1' },
      });
      await expect(sut.getReceipt(receipt.receiptId)).resolves.toEqual(receipt);
      expect(fake.ledger().charges).toEqual([
        expect.objectContaining({
          receipt_id: receipt.receiptId,
          order_id: id,
          price: 11000,
          tax_free: 1000,
          status: 1,
          source: 'charge',
          billing_key_suffix: info.billingKey.slice(-4),
        }),
      ]);
    });

    const chargeDeclines = TEST_CARDS.filter((c) => c.failsAt.charge && c.scenario !== 'insufficient_funds_from_second_charge');
    it.each(chargeDeclines.map((c) => [c.scenario, c] as const))('should map the %s test card to a typed decline', async (_s, card) => {
      let info: BillingKeyInfo;
      if (card.failsAt.issue) {
        info = await issue();
        fake.setKeyBehavior(info.receiptId, card.scenario);
      } else {
        info = await issue(card.cardNo);
      }
      const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayDeclinedError);
      expect(err.code).toBe(card.chargeErrorCode);
      expect(err.pgCode).toBe(card.pgErrorCode);
      expect((err as GatewayDeclinedError).hard).toBe(card.decline === 'hard');
      expect(err.retryable).toBe(card.decline === 'soft');
      expect(err.message).toContain(card.message);
      expect(err.message).not.toContain(info.billingKey);
      expect(JSON.stringify(err)).not.toContain(info.billingKey);
      expect(fake.ledger().charges).toHaveLength(0);
      expect(fake.ledger().failed_charges).toEqual([
        expect.objectContaining({ error_code: card.chargeErrorCode, pg_error_code: card.pgErrorCode, source: 'charge' }),
      ]);
    });

    it('should approve the first charge of the "from 2nd charge" card and decline the later ones as soft', async () => {
      const card = TEST_CARDS.find((c) => c.scenario === 'insufficient_funds_from_second_charge')!;
      const info = await issue(card.cardNo);
      await expect(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 })).resolves.toMatchObject({
        status: 1,
      });
      for (let i = 0; i < 2; i++) {
        const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }));
        expect(err).toBeInstanceOf(GatewayDeclinedError);
        expect((err as GatewayDeclinedError).hard).toBe(false);
        expect(err.pgCode).toBe('F051');
      }
    });

    it('should let a test make a working key decline and recover', async () => {
      const info = await issue();
      fake.setKeyBehavior(info.receiptId, 'limit_exceeded');
      const declinedOrder = orderId();
      const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: declinedOrder, orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayDeclinedError);
      expect(err.pgCode).toBe('F061');
      fake.setKeyBehavior(info.receiptId, null);
      // A declined attempt does not take its order_id.
      await expect(sut.charge({ billingKey: info.billingKey, orderId: declinedOrder, orderName: 'Pro', price: 5000, taxFree: 0 })).resolves.toMatchObject({
        status: 1,
        orderId: declinedOrder,
      });
    });

    it('should decline with expired_card once the card expiry has passed on the fake clock', async () => {
      const info = await sut.issueBillingKey({ ...issueParams(), cardExpireYear: '30', cardExpireMonth: '02' });
      clock.set(new Date('2030-03-01T00:00:00Z'));
      const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayDeclinedError);
      expect(err.pgCode).toBe('F054');
      expect((err as GatewayDeclinedError).hard).toBe(true);
    });

    it('should refuse a second charge with the same order_id as a duplicate, charging once', async () => {
      const info = await issue();
      const id = orderId();
      await sut.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0 });
      const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayDuplicateError);
      expect(err.code).toBe('RC_DUPLICATE_ORDER_ID');
      expect(fake.ledger().charges).toHaveLength(1);
    });

    it('should charge an order_id once when many identical requests race', async () => {
      const info = await issue();
      const id = orderId();
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, () => sut.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(GatewayDuplicateError);
      expect(fake.ledger().charges).toHaveLength(1);
    });

    it('should refuse invalid amounts before sending anything', async () => {
      const info = await issue();
      const before = fake.stats().requests;
      for (const [price, taxFree] of [
        [0, 0],
        [100.5, 0],
        [100, 101],
        [100, -1],
      ]) {
        const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price, taxFree }));
        expect(err).toBeInstanceOf(GatewayRequestError);
        expect(err.code).toBe('INVALID_ARGUMENT');
      }
      expect(fake.stats().requests).toBe(before);
    });
  });

  describe('reservations', () => {
    it('should allow 10 active reservations per key, refuse the 11th, and free budget on revocation', async () => {
      const info = await issue();
      const executeAt = new Date(T0.getTime() + 24 * 3600_000);
      const reserve = (id = orderId()) => sut.reserve({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 9900, taxFree: 0, executeAt });
      const reservations = [];
      for (let i = 0; i < 10; i++) reservations.push(await reserve());
      expect(reservations[0]).toEqual({ reserveId: expect.stringMatching(/^[0-9a-f]{24}$/), executeAt });

      const limit = await caught(reserve());
      expect(limit).toBeInstanceOf(GatewayReservationLimitError);
      expect(limit.code).toBe('RC_RESERVE_LIMIT_EXCEEDED');

      await sut.cancelReservation(reservations[3].reserveId);
      const revoked = await sut.lookupReservation(reservations[3].reserveId);
      expect(revoked).toMatchObject({ reserveId: reservations[3].reserveId, status: -1, revokedAt: T0, receiptId: null, executeAt, price: 9900 });
      await expect(reserve()).resolves.toMatchObject({ executeAt });
      expect(await caught(reserve())).toBeInstanceOf(GatewayReservationLimitError);

      const again = await caught(sut.cancelReservation(reservations[3].reserveId));
      expect(again).toBeInstanceOf(GatewayReservationAlreadyDoneError);
      expect(again.code).toBe('RC_RESERVE_ALREADY_DONE');
      expect(await caught(sut.lookupReservation('ffffffffffffffffffffffff'))).toBeInstanceOf(GatewayNotFoundError);
    });

    it('should refuse a reservation in the past and a second one with the same order_id', async () => {
      const info = await issue();
      const past = await caught(
        sut.reserve({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 9900, taxFree: 0, executeAt: new Date(T0.getTime() - 1000) }),
      );
      expect(past).toBeInstanceOf(GatewayRequestError);
      expect(past.code).toBe('RC_INVALID_PARAMETER');
      const id = orderId();
      const executeAt = new Date(T0.getTime() + 3600_000);
      await sut.reserve({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 9900, taxFree: 0, executeAt });
      expect(await caught(sut.reserve({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 9900, taxFree: 0, executeAt }))).toBeInstanceOf(
        GatewayDuplicateError,
      );
    });

    it('should execute due reservations and deliver the webhook, retrying until {"success":true}', async () => {
      const receiver = await startReceiver([
        { status: 500, body: 'oops' },
        { status: 200, body: '{"status":200}' },
        { status: 200, body: '{"success":true}' },
      ]);
      try {
        const info = await issue();
        const dueId = orderId();
        const due = await sut.reserve({
          billingKey: info.billingKey,
          orderId: dueId,
          orderName: 'Pro 2030-02',
          price: 9900,
          taxFree: 0,
          executeAt: new Date(T0.getTime() + 3600_000),
          feedbackUrl: receiver.url,
          metadata: { period: '2030-02' },
        });
        const later = await sut.reserve({
          billingKey: info.billingKey,
          orderId: orderId(),
          orderName: 'Pro',
          price: 9900,
          taxFree: 0,
          executeAt: new Date(T0.getTime() + 48 * 3600_000),
        });

        clock.set(new Date(T0.getTime() + 2 * 3600_000));
        const executions = await fake.executeDueReservations();
        expect(executions).toEqual([expect.objectContaining({ reserve_id: due.reserveId, order_id: dueId, result: 'success', reservation_status: 3 })]);
        await fake.webhooksIdle();

        const reservation = await sut.lookupReservation(due.reserveId);
        expect(reservation).toMatchObject({ status: 3, receiptId: executions[0].receipt_id, finishedAt: clock.now() });
        await expect(sut.lookupReservation(later.reserveId)).resolves.toMatchObject({ status: 1, receiptId: null });
        const receipt = await sut.getReceipt(executions[0].receipt_id);
        expect(receipt).toMatchObject({ orderId: dueId, status: 1, price: 9900, metadata: { period: '2030-02' } });

        expect(receiver.received).toHaveLength(3);
        for (const body of receiver.received) {
          expect(body).toMatchObject({ receipt_id: receipt.receiptId, order_id: dueId, status: 1, webhook_type: 'PAYMENT_COMPLETED', price: 9900 });
          expect(JSON.stringify(body)).not.toContain(info.billingKey);
        }
        expect(fake.ledger().webhooks).toEqual([
          expect.objectContaining({ url: receiver.url, webhook_type: 'PAYMENT_COMPLETED', receipt_id: receipt.receiptId, attempts: 3, delivered: true }),
        ]);
        expect(fake.ledger().charges).toEqual([expect.objectContaining({ order_id: dueId, source: 'reservation' })]);
      } finally {
        await receiver.close();
      }
    });

    it('should record a failed execution (status -2 receipt, PAYMENT_REQUEST_FAILED) and keep reservations of a destroyed key', async () => {
      const receiver = await startReceiver([{ status: 200, body: '{"success":true}' }]);
      fake.setWebhookUrl(receiver.url);
      try {
        const declining = await issue('4111110000000051');
        const destroyed = await issue();
        const executeAt = new Date(T0.getTime() + 3600_000);
        const r1 = await sut.reserve({ billingKey: declining.billingKey, orderId: orderId(), orderName: 'Pro', price: 9900, taxFree: 0, executeAt });
        const r2 = await sut.reserve({ billingKey: destroyed.billingKey, orderId: orderId(), orderName: 'Pro', price: 9900, taxFree: 0, executeAt });
        await sut.destroyBillingKey(destroyed.billingKey);
        // Bootpay refuses to revoke a reservation whose key is gone; it stays and fails when it executes.
        const revoke = await caught(sut.cancelReservation(r2.reserveId));
        expect(revoke).toBeInstanceOf(GatewayInvalidBillingKeyError);

        const executions = await fake.executeDueReservations(new Date(T0.getTime() + 2 * 3600_000));
        await fake.webhooksIdle();
        expect(executions).toEqual([
          expect.objectContaining({
            reserve_id: r1.reserveId,
            result: 'failed',
            reservation_status: -3,
            error_code: 'RC_CONFIRM_FAILED',
            pg_error_code: 'F051',
          }),
          expect.objectContaining({ reserve_id: r2.reserveId, result: 'failed', reservation_status: -3, error_code: 'SUBSCRIBE_BK_EXPIRED' }),
        ]);
        const failedReceipt = await sut.getReceipt(executions[0].receipt_id);
        expect(failedReceipt).toMatchObject({ status: -2, purchasedAt: null, cardApproveNo: null });
        expect(receiver.received.map((b) => b.webhook_type)).toEqual(['PAYMENT_REQUEST_FAILED', 'PAYMENT_REQUEST_FAILED']);
        expect(fake.ledger().charges).toHaveLength(0);
        expect(fake.ledger().failed_charges).toHaveLength(2);
      } finally {
        fake.setWebhookUrl(null);
        await receiver.close();
      }
    });
  });

  describe('cancels', () => {
    it('should cancel partially then fully with cumulative amounts, refusing over-cancels and repeated cancel_ids', async () => {
      const receiver = await startReceiver([{ status: 200, body: '{"success":true}' }]);
      fake.setWebhookUrl(receiver.url);
      try {
        const info = await issue();
        const paid = await sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 10000, taxFree: 2000 });

        clock.set(new Date(T0.getTime() + 60_000));
        const partial = await sut.cancelPayment({
          receiptId: paid.receiptId,
          cancelPrice: 3000,
          cancelTaxFree: 500,
          cancelId: 'refund-1',
          username: 'ops',
          message: '부분 환불',
        });
        expect(partial).toMatchObject({ status: 1, cancelledPrice: 3000, cancelledTaxFree: 500, cancelledAt: clock.now() });

        const dup = await caught(sut.cancelPayment({ receiptId: paid.receiptId, cancelPrice: 3000, cancelId: 'refund-1' }));
        expect(dup).toBeInstanceOf(GatewayDuplicateError);
        expect(dup.code).toBe('RC_CANCEL_ID_DUPLICATED');

        const over = await caught(sut.cancelPayment({ receiptId: paid.receiptId, cancelPrice: 7001, cancelId: 'refund-2' }));
        expect(over).toBeInstanceOf(GatewayRequestError);
        expect(over.code).toBe('RC_CANCEL_PRICE_EXCEEDED');
        const overTaxFree = await caught(sut.cancelPayment({ receiptId: paid.receiptId, cancelPrice: 2000, cancelTaxFree: 1501, cancelId: 'refund-3' }));
        expect(overTaxFree.code).toBe('RC_CANCEL_PRICE_EXCEEDED');

        const full = await sut.cancelPayment({ receiptId: paid.receiptId, cancelId: 'refund-4' });
        expect(full).toMatchObject({ status: 20, cancelledPrice: 10000, cancelledTaxFree: 2000 });
        await expect(sut.getReceipt(paid.receiptId)).resolves.toMatchObject({ status: 20, cancelledPrice: 10000, cancelledTaxFree: 2000 });

        const already = await caught(sut.cancelPayment({ receiptId: paid.receiptId, cancelId: 'refund-5' }));
        expect(already).toBeInstanceOf(GatewayAlreadyCancelledError);

        expect(fake.ledger().cancels).toEqual([
          expect.objectContaining({ receipt_id: paid.receiptId, cancel_id: 'refund-1', cancel_price: 3000, cancel_tax_free: 500 }),
          expect.objectContaining({ receipt_id: paid.receiptId, cancel_id: 'refund-4', cancel_price: 7000, cancel_tax_free: 1500 }),
        ]);
        await fake.webhooksIdle();
        expect(receiver.received.map((b) => [b.webhook_type, b.cancelled_price])).toEqual([
          ['PAYMENT_COMPLETED', 0],
          ['PAYMENT_PARTIAL_CANCELLED', 3000],
          ['PAYMENT_CANCELLED', 10000],
        ]);
        expect(await caught(sut.cancelPayment({ receiptId: 'ffffffffffffffffffffffff', cancelId: 'x' }))).toBeInstanceOf(GatewayNotFoundError);
      } finally {
        fake.setWebhookUrl(null);
        await receiver.close();
      }
    });
  });

  describe('faults and time-outs', () => {
    it('should turn a 5xx answer to a charge into an unknown outcome, and to a lookup into unavailable', async () => {
      const info = await issue();
      fake.setFaults({ fail_next: { count: 1, status: 503, route: 'subscribe/payment' } });
      const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect((err as GatewayUnknownOutcomeError).reason).toBe('server_error');
      expect(err.code).toBe('SERVICE_UNAVAILABLE');
      expect(fake.ledger().charges).toHaveLength(0);

      fake.setFaults({ fail_next: { count: 1, status: 500, route: 'receipt' } });
      const read = await caught(sut.getReceipt('ffffffffffffffffffffffff'));
      expect(read).toBeInstanceOf(GatewayUnavailableError);
      expect(read.retryable).toBe(true);
    });

    it('should report a charge whose answer was dropped as an unknown outcome; a re-send is a duplicate', async () => {
      const info = await issue();
      const id = orderId();
      fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
      const err = await caught(sut.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect(err.retryable).toBe(false);
      expect(err.message).not.toContain(info.billingKey);
      expect(fake.ledger().charges).toEqual([expect.objectContaining({ order_id: id, status: 1 })]);

      const resend = await caught(sut.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(resend).toBeInstanceOf(GatewayDuplicateError);
      expect(fake.ledger().charges).toHaveLength(1);
    });

    it('should time out a hanging charge at chargeTimeoutMs as an unknown outcome', async () => {
      const info = await issue();
      const fast = gateway({ chargeTimeoutMs: 200 });
      fake.setFaults({ timeout_after_charge: { count: 1, mode: 'hang', hang_ms: 5000 } });
      const started = Date.now();
      const err = await caught(fast.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(err).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect((err as GatewayUnknownOutcomeError).reason).toBe('timeout');
      expect(fake.ledger().charges).toHaveLength(1);
    });

    it('should report a dropped cancel as an unknown outcome; re-sending its cancel_id cannot cancel twice', async () => {
      const info = await issue();
      const paid = await sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 });
      fake.setFaults({ timeout_after_charge: { count: 1, route: 'cancel' } });
      const err = await caught(sut.cancelPayment({ receiptId: paid.receiptId, cancelPrice: 1000, cancelId: 'refund-x' }));
      expect(err).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect(await caught(sut.cancelPayment({ receiptId: paid.receiptId, cancelPrice: 1000, cancelId: 'refund-x' }))).toBeInstanceOf(GatewayDuplicateError);
      await expect(sut.getReceipt(paid.receiptId)).resolves.toMatchObject({ cancelledPrice: 1000 });
    });

    it('should report a dropped reservation as an unknown outcome; a re-send with the same order_id is a duplicate', async () => {
      const info = await issue();
      const id = orderId();
      const executeAt = new Date(T0.getTime() + 3600_000);
      fake.setFaults({ timeout_after_charge: { count: 1, route: 'subscribe/payment/reserve' } });
      expect(await caught(sut.reserve({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0, executeAt }))).toBeInstanceOf(
        GatewayUnknownOutcomeError,
      );
      expect(await caught(sut.reserve({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0, executeAt }))).toBeInstanceOf(
        GatewayDuplicateError,
      );
      expect(fake.ledger().reservations).toHaveLength(1);
    });

    it('should honour per-call time-outs: a slow lookup times out while a concurrent charge completes', async () => {
      const info = await issue();
      const g = gateway({ timeoutMs: 100, chargeTimeoutMs: 2000 });
      fake.setFaults({ latency_ms: 300 });
      const started = Date.now();
      const [lookup, charge] = await Promise.allSettled([
        g.getReceipt('ffffffffffffffffffffffff'),
        g.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }),
      ]);
      expect(lookup.status).toBe('rejected');
      const err = (lookup as PromiseRejectedResult).reason as GatewayError;
      expect(err).toBeInstanceOf(GatewayUnavailableError);
      expect(err.code).toBe('-100');
      expect(charge).toMatchObject({ status: 'fulfilled', value: { status: 1 } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);

      // The charge time-out applies to charges: the request times out but the charge is still made by the server.
      const impatient = gateway({ timeoutMs: 2000, chargeTimeoutMs: 100 });
      const id = orderId();
      const slow = await caught(impatient.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(slow).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect((slow as GatewayUnknownOutcomeError).reason).toBe('timeout');
      await new Promise((r) => setTimeout(r, 350));
      expect(fake.ledger().charges.map((c) => c.order_id)).toContain(id);
      fake.setFaults({});
    });

    it('should report an unreachable server as unavailable (nothing sent), even for a charge', async () => {
      const closed = new FakeBootpayServer();
      const url = await closed.start(0);
      await closed.stop();
      const g = gateway({ apiBaseUrl: `${url}/v2` });
      const err = await caught(g.charge({ billingKey: 'whatever-billing-key', orderId: orderId(), orderName: 'Pro', price: 5000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayUnavailableError);
      expect(err.retryable).toBe(true);
      await expect(g.ping()).resolves.toMatchObject({ ok: false, error: '-100' });
    });
  });

  describe('a misbehaving server', () => {
    let odd: http.Server;
    let oddUrl: string;
    let answer: { status: number; type: string; body: string };

    beforeAll(async () => {
      odd = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(answer.status, { 'content-type': answer.type });
          res.end(answer.body);
        });
      });
      await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
      oddUrl = `http://127.0.0.1:${(odd.address() as AddressInfo).port}/v2`;
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => {
        odd.close(() => resolve());
        odd.closeAllConnections();
      });
    });

    const chargeOdd = () =>
      caught(gateway({ apiBaseUrl: oddUrl }).charge({ billingKey: 'bk-odd', orderId: 'odd-1', orderName: 'Pro', price: 1000, taxFree: 0 }));
    const readOdd = () => caught(gateway({ apiBaseUrl: oddUrl }).getReceipt('ffffffffffffffffffffffff'));

    it('should map a 2xx body carrying error_code like the error it is', async () => {
      answer = { status: 200, type: 'application/json', body: '{"error_code":"RC_CONFIRM_FAILED","pg_error_code":"F051","message":"잔액부족"}' };
      const err = await chargeOdd();
      expect(err).toBeInstanceOf(GatewayDeclinedError);
      expect((err as GatewayDeclinedError).hard).toBe(false);
    });

    it('should map a non-JSON 5xx (the SDK rejects with a bare string) to unknown outcome / unavailable', async () => {
      answer = { status: 500, type: 'text/plain', body: 'boom' };
      expect(await chargeOdd()).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect(await readOdd()).toBeInstanceOf(GatewayUnavailableError);
    });

    it('should not trust a 2xx answer it cannot read', async () => {
      answer = { status: 200, type: 'text/html', body: '<html>maintenance</html>' };
      expect(await chargeOdd()).toBeInstanceOf(GatewayUnknownOutcomeError);
      answer = { status: 200, type: 'application/json', body: '{"status":1}' };
      const err = await chargeOdd();
      expect(err).toBeInstanceOf(GatewayUnknownOutcomeError);
      expect((err as GatewayUnknownOutcomeError).reason).toBe('unexpected_response');
      expect(await readOdd()).toBeInstanceOf(GatewayUnavailableError);
      // A receipt for another order is not an answer to this charge.
      answer = { status: 200, type: 'application/json', body: '{"receipt_id":"abc","order_id":"another","price":1000,"status":1}' };
      expect(await chargeOdd()).toBeInstanceOf(GatewayUnknownOutcomeError);
    });
  });

  describe('authentication', () => {
    it('should map wrong or missing credentials to GatewayConfigError', async () => {
      const wrongSecret = await caught(gateway({ secretKey: 'sk_wrong' }).getReceipt('ffffffffffffffffffffffff'));
      expect(wrongSecret).toBeInstanceOf(GatewayConfigError);
      expect(wrongSecret.code).toBe('APP_SK_NOT_MATCHED');
      expect(wrongSecret.message).not.toContain('sk_wrong');
      const wrongClient = await caught(gateway({ clientKey: 'ck_wrong' }).getReceipt('ffffffffffffffffffffffff'));
      expect(wrongClient.code).toBe('APP_KEY_NOT_FOUND');
      const none = await caught(gateway({ clientKey: undefined, secretKey: undefined }).getReceipt('ffffffffffffffffffffffff'));
      expect(none).toBeInstanceOf(GatewayConfigError);
      expect(none.code).toBe('-101');
      const wrongPk = await caught(legacyGateway({ privateKey: 'pk_wrong' }).getReceipt('ffffffffffffffffffffffff'));
      expect(wrongPk).toBeInstanceOf(GatewayConfigError);
      expect(wrongPk.code).toBe('APP_SK_NOT_MATCHED');
      await expect(gateway({ secretKey: 'sk_wrong' }).ping()).resolves.toMatchObject({ ok: false, error: 'APP_SK_NOT_MATCHED' });
      await expect(sut.ping()).resolves.toMatchObject({ ok: true, latencyMs: expect.any(Number) });
    });

    it('should use one legacy token, renew it once 25 minutes have passed, and share one renewal among concurrent callers', async () => {
      const g = legacyGateway();
      const tokens = () => fake.stats().tokens_issued;
      const base = tokens();
      const info = await g.issueBillingKey(issueParams());
      await g.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 });
      expect(tokens()).toBe(base + 1);

      clock.advance(24 * MINUTE);
      await g.getReceipt(info.receiptId); // any call, to use the token 24 minutes on
      await expect(g.lookupBillingKey(info.billingKey)).resolves.toMatchObject({ receiptId: info.receiptId });
      expect(tokens()).toBe(base + 1);

      clock.advance(2 * MINUTE);
      await Promise.all(Array.from({ length: 20 }, () => g.lookupBillingKey(info.billingKey)));
      expect(tokens()).toBe(base + 2);

      clock.advance(26 * MINUTE);
      await Promise.all(
        Array.from({ length: 20 }, () => g.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 })),
      );
      expect(tokens()).toBe(base + 3);
    });

    it('should renew on TOKEN_KEY_INVALID, retrying lookups but never re-sending a charge', async () => {
      const gatewayClock = new TestClock();
      gatewayClock.set(T0);
      const g = legacyGateway({}, gatewayClock);
      const info = await g.issueBillingKey(issueParams());
      const base = fake.stats().tokens_issued;

      // The server's clock passes 30 minutes; the gateway's does not, so it still uses its token.
      clock.advance(31 * MINUTE);
      await expect(g.lookupBillingKey(info.billingKey)).resolves.toMatchObject({ receiptId: info.receiptId });
      expect(fake.stats().tokens_issued).toBe(base + 1);

      clock.advance(31 * MINUTE);
      const id = orderId();
      const err = await caught(g.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 1000, taxFree: 0 }));
      expect(err).toBeInstanceOf(GatewayConfigError);
      expect(err.code).toBe('TOKEN_KEY_INVALID');
      expect(err.retryable).toBe(true);
      expect(fake.ledger().charges).toHaveLength(0);
      expect(fake.stats().tokens_issued).toBe(base + 2);
      // The token was renewed: the caller's own retry goes through.
      await expect(g.charge({ billingKey: info.billingKey, orderId: id, orderName: 'Pro', price: 1000, taxFree: 0 })).resolves.toMatchObject({ status: 1 });
      expect(fake.ledger().charges).toHaveLength(1);
    });
  });

  it('should never put the billing key, card number or credentials in errors', async () => {
    const info = await issue();
    fake.setKeyBehavior(info.receiptId, 'lost_or_stolen');
    const errors: GatewayError[] = [];
    errors.push(await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 })));
    fake.setFaults({ timeout_after_charge: { count: 1 } });
    fake.setKeyBehavior(info.receiptId, null);
    errors.push(await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 })));
    errors.push(await caught(sut.lookupBillingKey(`${info.billingKey}x`)));
    await sut.destroyBillingKey(info.billingKey);
    errors.push(await caught(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 })));
    errors.push(await caught(sut.issueBillingKey(issueParams('4111110000000014'))));
    errors.push(
      await caught(
        gateway({ secretKey: 'sk_wrong_secret_value' }).charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 1000, taxFree: 0 }),
      ),
    );
    for (const e of errors) {
      const dump = `${e.message}\n${e.stack ?? ''}\n${JSON.stringify(e)}`;
      expect(dump).not.toContain(info.billingKey);
      expect(dump).not.toContain('4111110000000014');
      expect(dump).not.toContain('sk_wrong_secret_value');
      expect(dump).not.toContain(fake.credentials.secretKey);
    }
    const ledger = JSON.stringify(fake.ledger());
    expect(ledger).not.toContain(info.billingKey);
    expect(ledger).not.toContain(GOOD_CARD);
  });

  describe('call observers (the metrics)', () => {
    it('should report each call with its operation, outcome and duration, and stop once removed', async () => {
      const calls: Array<[string, string, number]> = [];
      const remove = sut.observeCalls((operation, outcome, seconds) => calls.push([operation, outcome, seconds]));
      const info = await issue();
      await sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 11000, taxFree: 0 });
      const declining = await issue(TEST_CARDS.find((c) => c.scenario === 'insufficient_funds')!.cardNo);
      await expect(sut.charge({ billingKey: declining.billingKey, orderId: orderId(), orderName: 'Pro', price: 11000, taxFree: 0 })).rejects.toBeInstanceOf(
        GatewayDeclinedError,
      );
      fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
      await expect(sut.charge({ billingKey: info.billingKey, orderId: orderId(), orderName: 'Pro', price: 11000, taxFree: 0 })).rejects.toBeInstanceOf(
        GatewayUnknownOutcomeError,
      );
      await expect(sut.getReceipt('000000000000000000000000')).rejects.toBeInstanceOf(GatewayNotFoundError);
      expect(calls.map(([op, outcome]) => [op, outcome])).toEqual([
        ['issueBillingKey', 'ok'],
        ['charge', 'ok'],
        ['issueBillingKey', 'ok'],
        ['charge', 'declined'],
        ['charge', 'unknown'],
        ['getReceipt', 'not_found'],
      ]);
      for (const [, , seconds] of calls) expect(seconds).toBeGreaterThan(0);
      remove();
      await expect(sut.getReceipt('000000000000000000000000')).rejects.toBeInstanceOf(GatewayNotFoundError);
      expect(calls).toHaveLength(6);
    });

    it('should answer the call even when an observer throws', async () => {
      sut.observeCalls(() => {
        throw new Error('observer failed');
      });
      await expect(issue()).resolves.toMatchObject({ billingKey: expect.any(String) });
    });
  });
});
