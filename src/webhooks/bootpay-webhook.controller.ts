import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { errorBody } from '../common/exception.filter';
import { RateLimiter } from '../common/rate-limiter';
import { Runtime, RUNTIME } from '../config/runtime';
import { BootpayWebhookService } from './bootpay-webhook.service';
import { BootpayWebhookAckDto } from './bootpay-webhook.dto';

@ApiTags('webhooks')
@Controller('v1/webhooks')
export class BootpayWebhookController {
  /** The route is open to anyone and each call costs a Bootpay lookup: calls are limited per source address. */
  private readonly limiter: RateLimiter;
  /** Calls for a receipt already being looked up wait for that lookup instead of making another. */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly webhooks: BootpayWebhookService,
    @Inject(RUNTIME) runtime: Runtime,
  ) {
    this.limiter = new RateLimiter(runtime.config.bootpayWebhookRatePerMinute);
  }

  /** Bootpay requires HTTP 200 with {"success": true}; anything else is retried by Bootpay. */
  @Post('bootpay')
  @Public()
  @HttpCode(200)
  @ApiOkResponse({ type: BootpayWebhookAckDto })
  @ApiOperation({
    summary: "Bootpay's payment webhook (feedback_url): verified by fetching the receipt from Bootpay",
    description: 'Limited per source address (BOOTPAY_WEBHOOK_RATE_PER_MINUTE; 429 with Retry-After beyond it, which Bootpay retries).',
  })
  async bootpay(
    @Body() body: Record<string, unknown>,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<{ success: true } | ReturnType<typeof errorBody>> {
    const wait = this.limiter.take(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    if (wait > 0) {
      res.status(429).setHeader('Retry-After', String(wait));
      return errorBody(429, 'rate_limited', `Too many webhook calls from this address; retry in ${wait} s`, [{ field: 'source', message: 'too many calls' }]);
    }
    const receiptId = typeof body?.receipt_id === 'string' ? body.receipt_id : undefined;
    if (receiptId === undefined) {
      await this.webhooks.handle(body);
      return { success: true };
    }
    let lookup = this.inFlight.get(receiptId);
    if (!lookup) {
      lookup = this.webhooks.handle(body).finally(() => this.inFlight.delete(receiptId));
      this.inFlight.set(receiptId, lookup);
    }
    await lookup;
    return { success: true };
  }
}
