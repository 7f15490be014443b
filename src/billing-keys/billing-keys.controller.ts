import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Page, PageQueryDto } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { BillingKeysService } from './billing-keys.service';
import { BillingKeyResponseDto, CreateBillingKeyDto } from './dto/billing-key.dto';

@ApiTags('billing-keys')
@ApiBearerAuth()
@Controller('v1')
export class BillingKeysController {
  constructor(private readonly keys: BillingKeysService) {}

  @Post('customers/:id/billing-keys')
  @ApiCreatedResponse({ type: BillingKeyResponseDto })
  @ApiOperation({ summary: 'Register a billing key: from a client-SDK receipt_id, or by card data passed to Bootpay' })
  create(@Param('id', UuidPipe) customerId: string, @Body() dto: CreateBillingKeyDto): Promise<BillingKeyResponseDto> {
    return this.keys.create(customerId, dto);
  }

  @Get('customers/:id/billing-keys')
  list(@Param('id', UuidPipe) customerId: string, @Query() query: PageQueryDto): Promise<Page<BillingKeyResponseDto>> {
    return this.keys.listForCustomer(customerId, query);
  }

  @Get('billing-keys/:id')
  @ApiOkResponse({ type: BillingKeyResponseDto })
  get(@Param('id', UuidPipe) id: string): Promise<BillingKeyResponseDto> {
    return this.keys.get(id);
  }

  @Delete('billing-keys/:id')
  @ApiOkResponse({ type: BillingKeyResponseDto })
  @ApiOperation({ summary: 'Delete the billing key at Bootpay (409 while a live subscription uses it)' })
  delete(@Param('id', UuidPipe) id: string): Promise<BillingKeyResponseDto> {
    return this.keys.delete(id);
  }
}
