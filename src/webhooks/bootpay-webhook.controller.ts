import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
import { BootpayWebhookService } from './bootpay-webhook.service';

@ApiTags('webhooks')
@Controller('v1/webhooks')
export class BootpayWebhookController {
  constructor(private readonly webhooks: BootpayWebhookService) {}

  /** Bootpay requires HTTP 200 with {"success": true}; anything else is retried by Bootpay. */
  @Post('bootpay')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: "Bootpay's payment webhook (feedback_url): verified by fetching the receipt from Bootpay" })
  async bootpay(@Body() body: Record<string, unknown>): Promise<{ success: true }> {
    await this.webhooks.handle(body);
    return { success: true };
  }
}
