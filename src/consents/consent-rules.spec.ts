import { consentStatus, consentWindowOpens, decideRenewal, migrationChangeAt, StoredConsent } from './consent-rules';

const TZ = 'Asia/Seoul';
const DAY = 24 * 3600_000;
const CHANGE = new Date('2026-03-01T01:00:00Z'); // 2026-03-01 10:00 KST
const at = (ms: number) => new Date(CHANGE.getTime() + ms);
const consent = (extra: Partial<StoredConsent> = {}): StoredConsent => ({
  id: 'c1',
  kind: 'trial_conversion',
  changeId: null,
  amountAfter: 11000,
  obtainedAt: at(-DAY),
  withdrawnAt: null,
  ...extra,
});
const settings = { required: true, tz: TZ };

describe('consent rules (전자상거래법 제13조 제6항)', () => {
  it('should count a consent obtained within the 30 days before the change, and none outside or withdrawn', () => {
    expect(consentWindowOpens(CHANGE, TZ)).toEqual(at(-30 * DAY));
    expect(consentStatus(consent({ obtainedAt: at(-30 * DAY) }), CHANGE, TZ)).toBe('valid');
    expect(consentStatus(consent({ obtainedAt: at(-30 * DAY - 1) }), CHANGE, TZ)).toBe('too_early');
    expect(consentStatus(consent({ obtainedAt: CHANGE }), CHANGE, TZ)).toBe('valid');
    expect(consentStatus(consent({ obtainedAt: at(1) }), CHANGE, TZ)).toBe('after_change');
    expect(consentStatus(consent({ withdrawnAt: at(-DAY / 2) }), CHANGE, TZ)).toBe('withdrawn');
  });

  it('should charge a trial end only with a valid conversion consent, and a plan with a zero amount or the rule off without one', () => {
    const trialing = { status: 'trialing' as const, nextChargeAt: CHANGE };
    expect(decideRenewal(trialing, 11000, null, [consent()], settings)).toEqual({ action: 'charge', consentId: 'c1' });
    expect(decideRenewal(trialing, 11000, null, [consent({ obtainedAt: at(-40 * DAY) })], settings)).toEqual({
      action: 'consent_missing',
      kind: 'trial_conversion',
      changeId: null,
    });
    expect(decideRenewal(trialing, 11000, null, [consent({ kind: 'price_increase', changeId: 'm1' })], settings)).toMatchObject({ action: 'consent_missing' });
    expect(decideRenewal(trialing, 0, null, [], settings)).toEqual({ action: 'charge', consentId: null });
    expect(decideRenewal(trialing, 11000, null, [], { ...settings, required: false })).toEqual({ action: 'charge', consentId: null });
  });

  it('should switch a renewal on or after a migration only with a consent to that migration when the price rises', () => {
    const active = { status: 'active' as const, nextChargeAt: CHANGE };
    const migration = { id: 'm1', fromPlanId: 'a', toPlanId: 'b', toAmount: 22000, effectiveAt: at(-DAY), requiresConsent: true };
    const forIt = consent({ kind: 'price_increase', changeId: 'm1', amountAfter: 22000 });
    expect(decideRenewal(active, 11000, migration, [forIt], settings)).toEqual({ action: 'migrate', toPlanId: 'b', migrationId: 'm1', consentId: 'c1' });
    expect(decideRenewal(active, 11000, migration, [{ ...forIt, changeId: 'other' }], settings)).toEqual({
      action: 'consent_missing',
      kind: 'price_increase',
      changeId: 'm1',
    });
    expect(decideRenewal(active, 11000, { ...migration, requiresConsent: false }, [], settings)).toEqual({
      action: 'migrate',
      toPlanId: 'b',
      migrationId: 'm1',
      consentId: null,
    });
    // A renewal before the migration's date is charged on the old plan.
    expect(decideRenewal(active, 11000, { ...migration, effectiveAt: at(DAY) }, [], settings)).toEqual({ action: 'charge', consentId: null });
  });

  it('should find the first renewal on or after a migration, after a trial’s first paid period', () => {
    const plan = { interval: 'month' as const, intervalCount: 1 };
    const anchor = new Date('2026-01-15T01:00:00Z');
    const active = { status: 'active' as const, anchorAt: anchor, periodIndex: 0, nextChargeAt: new Date('2026-02-15T01:00:00Z') };
    expect(migrationChangeAt(active, plan, new Date('2026-02-01T00:00:00Z'), TZ)).toEqual(new Date('2026-02-15T01:00:00Z'));
    expect(migrationChangeAt(active, plan, new Date('2026-03-20T00:00:00Z'), TZ)).toEqual(new Date('2026-04-15T01:00:00Z'));
    const trialing = { status: 'trialing' as const, anchorAt: anchor, periodIndex: -1, nextChargeAt: anchor };
    expect(migrationChangeAt(trialing, plan, new Date('2026-01-01T00:00:00Z'), TZ)).toEqual(new Date('2026-02-15T01:00:00Z'));
  });
});
