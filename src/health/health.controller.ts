import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { Public } from '../auth/auth.decorators';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { HealthResponseDto } from './health.dto';

/** Reports the database and the gateway. 200 when the database answers (the gateway is reported, not required). */
@ApiTags('health')
@Controller('health')
export class HealthController {
  /** Bootpay is asked at most every few seconds, however often /health is polled. */
  private lastPing?: { at: number; value: Promise<{ ok: boolean; latencyMs: number; error?: string }> };

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly gateway: BootpayGateway,
  ) {}

  @Get()
  @Public()
  @ApiOkResponse({ type: HealthResponseDto })
  async health(@Res({ passthrough: true }) res: Response) {
    const started = Date.now();
    let database: { ok: boolean; latency_ms: number; error?: string };
    try {
      await this.db.query('SELECT 1');
      database = { ok: true, latency_ms: Date.now() - started };
    } catch {
      database = { ok: false, latency_ms: Date.now() - started, error: 'database did not answer' };
    }
    if (!this.lastPing || Date.now() - this.lastPing.at > 5000) this.lastPing = { at: Date.now(), value: this.gateway.ping() };
    const ping = await this.lastPing.value;
    const gateway = { ok: ping.ok, latency_ms: ping.latencyMs, ...(ping.error ? { error: ping.error } : {}) };
    const status = database.ok ? (gateway.ok ? 'ok' : 'degraded') : 'down';
    res.status(database.ok ? 200 : 503);
    return { status, database, gateway };
  }
}
