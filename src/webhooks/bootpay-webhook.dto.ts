import { ApiProperty } from '@nestjs/swagger';

/** The answer Bootpay requires to stop retrying a webhook. */
export class BootpayWebhookAckDto {
  @ApiProperty({ enum: [true], example: true }) success: true;
}
