import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { timingSafeEqual, createHash } from 'node:crypto';
import { ApiKeysService } from '../auth/api-keys.service';
import { Public } from '../auth/auth.decorators';
import { DomainError } from '../common/errors';
import { Runtime, RUNTIME } from '../config/runtime';
import { MetricsService } from './metrics.service';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Prometheus scrapes GET /metrics with `Authorization: Bearer <METRICS_TOKEN>`, or an admin API key. Without a key
 * 401, with a service key 403: the same answers as the rest of the API. Not part of the OpenAPI document (text, not
 * JSON; an operations route, not the billing API).
 */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    private readonly keys: ApiKeysService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  @Get()
  @Public()
  async scrape(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) res: Response): Promise<string> {
    const match = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) throw new DomainError('unauthorized', 'missing_api_key', 'Send METRICS_TOKEN or an admin API key as Authorization: Bearer <key>');
    const token = this.runtime.config.metricsToken;
    // Compared as digests: equal lengths, and no early exit that times the token out character by character.
    if (!(token && timingSafeEqual(digest(token), digest(match[1])))) {
      const actor = await this.keys.authenticate(match[1]);
      if (!actor) throw new DomainError('unauthorized', 'invalid_api_key', 'The API key is not valid');
      if (actor.role !== 'admin') throw new DomainError('forbidden', 'insufficient_role', 'Metrics need METRICS_TOKEN or the admin role');
    }
    res.setHeader('Content-Type', this.metrics.contentType);
    return this.metrics.scrape();
  }
}
