import { chargeRunExitCode, RunFailure } from '../charging/charge-run-report';
import { RESERVATION_STATUS } from '../gateway/gateway.types';
import { bootpayReservationOutcome, localReservationOutcome, mapLimited } from './reconciliation';

describe('reservation outcomes', () => {
  const reservation = (status: number) => ({
    reserveId: 'r',
    orderId: 'o',
    receiptId: null,
    price: 1,
    taxFree: 0,
    status,
    executeAt: null,
    revokedAt: null,
    finishedAt: null,
  });

  it('should tell paid, declined and revoked reservations apart at Bootpay', () => {
    expect(bootpayReservationOutcome(reservation(RESERVATION_STATUS.RESERVED))).toBe('reserved');
    expect(bootpayReservationOutcome(reservation(RESERVATION_STATUS.EXECUTED))).toBe('paid');
    expect(bootpayReservationOutcome(reservation(RESERVATION_STATUS.EXECUTION_FAILED))).toBe('declined');
    expect(bootpayReservationOutcome(reservation(RESERVATION_STATUS.REVOKED))).toBe('revoked');
  });

  it('should read the same outcomes from the local payment', () => {
    expect(localReservationOutcome({ status: 'READY', failure_code: null })).toBe('reserved');
    expect(localReservationOutcome({ status: 'PARTIAL_CANCELED', failure_code: null })).toBe('paid');
    expect(localReservationOutcome({ status: 'ABORTED', failure_code: 'RC_CONFIRM_FAILED' })).toBe('declined');
    expect(localReservationOutcome({ status: 'ABORTED', failure_code: 'reservation_canceled' })).toBe('revoked');
  });
});

describe(mapLimited.name, () => {
  it('should keep the order of the items and never run more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimited([5, 1, 4, 2, 3], 2, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });
});

describe(chargeRunExitCode.name, () => {
  const failure = (kind: RunFailure['kind']): RunFailure => ({ subscription_id: 's', payment_id: 'p', kind, status: 'ABORTED', reason: 'r' });

  it('should answer 0 when every failure is a decline, 3 when one is unknown or aborted, 4 when the run failed', () => {
    expect(chargeRunExitCode('completed', [])).toBe(0);
    expect(chargeRunExitCode('completed', [failure('declined')])).toBe(0);
    expect(chargeRunExitCode('completed', [failure('declined'), failure('unknown')])).toBe(3);
    expect(chargeRunExitCode('completed', [failure('aborted')])).toBe(3);
    expect(chargeRunExitCode('failed', [])).toBe(4);
    expect(chargeRunExitCode('interrupted', [failure('declined')])).toBe(4);
  });
});
