import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Page } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { CreateCustomerDto, CustomerResponseDto, ListCustomersQueryDto, UpdateCustomerDto } from './dto/customer.dto';
import { CustomersService } from './customers.service';

@ApiTags('customers')
@ApiBearerAuth()
@Controller('v1/customers')
export class CustomersController {
  constructor(private readonly customers: CustomersService) {}

  @Post()
  @ApiCreatedResponse({ type: CustomerResponseDto })
  @ApiOperation({ summary: 'Create a customer' })
  create(@Body() dto: CreateCustomerDto): Promise<CustomerResponseDto> {
    return this.customers.create(dto);
  }

  @Get()
  @ApiOperation({ summary: 'List customers, optionally by external_id' })
  list(@Query() query: ListCustomersQueryDto): Promise<Page<CustomerResponseDto>> {
    return this.customers.list(query);
  }

  @Get(':id')
  @ApiOkResponse({ type: CustomerResponseDto })
  get(@Param('id', UuidPipe) id: string): Promise<CustomerResponseDto> {
    return this.customers.get(id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: CustomerResponseDto })
  update(@Param('id', UuidPipe) id: string, @Body() dto: UpdateCustomerDto): Promise<CustomerResponseDto> {
    return this.customers.update(id, dto);
  }
}
