import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Page } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { ListPaymentsQueryDto, PaymentResponseDto } from './payment.dto';
import { PaymentsService } from './payments.service';

@ApiTags('payments')
@ApiBearerAuth()
@Controller('v1/payments')
export class PaymentsController {
  constructor(private readonly payments: PaymentsService) {}

  @Get()
  list(@Query() q: ListPaymentsQueryDto): Promise<Page<PaymentResponseDto>> {
    return this.payments.list(q);
  }

  @Get(':id')
  @ApiOkResponse({ type: PaymentResponseDto })
  get(@Param('id', UuidPipe) id: string): Promise<PaymentResponseDto> {
    return this.payments.get(id);
  }
}
