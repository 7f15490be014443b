import { Body, Controller, Get, Param, Post, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Actor, CurrentActor, Roles } from '../auth/auth.decorators';
import { Page, PageQueryDto } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { CreateRefundDto, RefundResponseDto } from '../ledger/dto/refund.dto';
import { RefundsService } from '../ledger/refunds.service';

@ApiTags('refunds')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/payments/:id/refunds')
export class RefundsController {
  constructor(private readonly refunds: RefundsService) {}

  @Post()
  @ApiOperation({
    summary: 'Refund a payment at Bootpay: the whole remaining balance, or part of it',
    description:
      'Without amount: everything that remains (and all the remaining tax-free amount). With amount: a partial refund whose ' +
      'tax-free part is tax_free_amount, or else split in proportion to the remaining balance.',
  })
  @ApiResponse({ status: 201, type: RefundResponseDto, description: 'Refunded' })
  @ApiResponse({
    status: 202,
    type: RefundResponseDto,
    description: "Sent, Bootpay's answer did not come: status unknown, resolved by re-sending the same cancel_id",
  })
  @ApiResponse({ status: 409, description: 'Does not fit the payment (balance, tax-free amount, status, a refund in flight), or Bootpay refused it' })
  async create(
    @Param('id', UuidPipe) id: string,
    @Body() dto: CreateRefundDto,
    @CurrentActor() actor: Actor,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RefundResponseDto> {
    const refund = await this.refunds.refund(id, { amount: dto.amount, taxFreeAmount: dto.tax_free_amount, reason: dto.reason }, actor);
    if (refund.status !== 'succeeded') res.status(202);
    return refund;
  }

  @Get()
  @ApiOperation({ summary: "The payment's refunds, oldest first" })
  list(@Param('id', UuidPipe) id: string, @Query() q: PageQueryDto): Promise<Page<RefundResponseDto>> {
    return this.refunds.list(id, q);
  }
}
