import { DynamicModule, Global, Module } from '@nestjs/common';
import { Clock } from './common/clock';
import { SecretBox } from './common/secret-box';
import { BootpayGateway, BOOTPAY_GATEWAY_CONFIG } from './gateway/bootpay.gateway';
import { Runtime, RUNTIME } from './config/runtime';

/** Process-wide providers: the runtime settings, the clock, the secret box and the one Bootpay gateway. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(runtime: Runtime): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: RUNTIME, useValue: runtime },
        { provide: Clock, useValue: runtime.clock },
        { provide: SecretBox, useValue: new SecretBox(runtime.encryptionKey) },
        { provide: BOOTPAY_GATEWAY_CONFIG, useValue: runtime.gateway },
        BootpayGateway,
      ],
      exports: [RUNTIME, Clock, SecretBox, BootpayGateway],
    };
  }
}
