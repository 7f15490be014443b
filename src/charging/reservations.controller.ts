import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { UuidPipe } from '../common/uuid.pipe';
import { ReservationsService } from '../ledger/reservations.service';
import { BillingKeyReservationsResponseDto } from './charge-run.dto';

@ApiTags('billing-keys')
@ApiBearerAuth()
@Controller('v1/billing-keys')
export class ReservationsController {
  constructor(private readonly reservations: ReservationsService) {}

  @Get(':id/reservations')
  @ApiOkResponse({ type: BillingKeyReservationsResponseDto })
  @ApiOperation({ summary: "The key's reservation budget (10 at Bootpay) and its outstanding reservations" })
  forKey(@Param('id', UuidPipe) id: string) {
    return this.reservations.forKey(id);
  }
}
