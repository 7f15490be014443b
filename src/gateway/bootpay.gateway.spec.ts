import { Test } from '@nestjs/testing';
import { Clock, TestClock } from '../common/clock';
import { FakeBootpayServer } from '../fake-bootpay/fake-bootpay.server';
import { BOOTPAY_GATEWAY_CONFIG, BootpayGateway, GatewayConfig } from './bootpay.gateway';

describe(BootpayGateway.name, () => {
  let fake: FakeBootpayServer;
  let config: GatewayConfig;

  beforeAll(async () => {
    fake = new FakeBootpayServer();
    await fake.start(0);
    config = { ...fake.credentials, mode: 'development', apiBaseUrl: fake.apiBaseUrl, timeoutMs: 2000, chargeTimeoutMs: 3000 };
  });

  afterAll(async () => {
    await fake.stop();
  });

  it('should be constructible with new', async () => {
    const sut = new BootpayGateway(config, new TestClock());
    await expect(sut.ping()).resolves.toMatchObject({ ok: true });
    sut.onModuleDestroy();
  });

  it('should be resolved by Nest from BOOTPAY_GATEWAY_CONFIG and Clock', async () => {
    const moduleRef = await Test.createTestingModule({
      providers: [BootpayGateway, { provide: BOOTPAY_GATEWAY_CONFIG, useValue: config }, { provide: Clock, useValue: new TestClock() }],
    }).compile();
    const sut = moduleRef.get(BootpayGateway);
    expect(moduleRef.get(BOOTPAY_GATEWAY_CONFIG)).toBe(config);
    await expect(sut.ping()).resolves.toMatchObject({ ok: true });
    await moduleRef.close();
  });
});
