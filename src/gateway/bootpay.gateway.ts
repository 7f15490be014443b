/**
 * The Nest injectable of the Bootpay gateway. All the logic is in {@link BootpayGatewayCore} (framework-free, so unit
 * specs can run it without loading Nest). Constructible with plain `new BootpayGateway(config, clock)`.
 */
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Clock } from '../common/clock';
import { BootpayGatewayCore } from './bootpay-gateway.core';
import { BOOTPAY_GATEWAY_CONFIG, GatewayConfig } from './gateway.types';

export * from './gateway.types';
export type { GatewayLogger, GatewayCallObserver, GatewayCallOutcome } from './bootpay-gateway.core';

@Injectable()
export class BootpayGateway extends BootpayGatewayCore implements OnModuleDestroy {
  constructor(@Inject(BOOTPAY_GATEWAY_CONFIG) config: GatewayConfig, @Inject(Clock) clock: Clock) {
    super(config, clock, new Logger(BootpayGateway.name));
  }

  onModuleDestroy(): void {
    this.close();
  }
}
