import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { isUniqueViolation } from '../common/db-errors';
import { ConflictError, NotFoundError } from '../common/errors';
import { Page, paginate } from '../common/pagination';
import { normalizePhone } from '../common/validators';
import { CustomerEntity } from './customer.entity';
import { CreateCustomerDto, CustomerResponseDto, ListCustomersQueryDto, UpdateCustomerDto } from './dto/customer.dto';

@Injectable()
export class CustomersService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
  ) {}

  private get repo() {
    return this.db.getRepository(CustomerEntity);
  }

  async create(dto: CreateCustomerDto): Promise<CustomerResponseDto> {
    const now = this.clock.now();
    try {
      const saved = await this.repo.save(
        this.repo.create({
          externalId: dto.external_id,
          name: dto.name.trim(),
          email: dto.email ?? null,
          phone: dto.phone ? normalizePhone(dto.phone) : null,
          metadata: dto.metadata ?? {},
          createdAt: now,
          updatedAt: now,
        }),
      );
      return this.map(saved);
    } catch (err) {
      if (isUniqueViolation(err, 'customers_external_id_unique')) {
        throw new ConflictError('external_id_taken', `A customer with external_id ${dto.external_id} already exists`);
      }
      throw err;
    }
  }

  async get(id: string): Promise<CustomerResponseDto> {
    return this.map(await this.getEntity(id));
  }

  async getEntity(id: string): Promise<CustomerEntity> {
    const c = await this.repo.findOneBy({ id });
    if (!c) throw new NotFoundError('Customer', id);
    return c;
  }

  async list(query: ListCustomersQueryDto): Promise<Page<CustomerResponseDto>> {
    const qb = this.repo.createQueryBuilder('c');
    if (query.external_id !== undefined) qb.where('c.external_id = :e', { e: query.external_id });
    return paginate(qb, query, (c) => this.map(c), 'c');
  }

  async update(id: string, dto: UpdateCustomerDto): Promise<CustomerResponseDto> {
    const c = await this.getEntity(id);
    if (dto.name !== undefined) c.name = dto.name.trim();
    if (dto.email !== undefined) c.email = dto.email;
    if (dto.phone !== undefined) c.phone = dto.phone === null ? null : normalizePhone(dto.phone);
    if (dto.metadata !== undefined) c.metadata = dto.metadata;
    c.updatedAt = this.clock.now();
    return this.map(await this.repo.save(c));
  }

  map(c: CustomerEntity): CustomerResponseDto {
    return {
      id: c.id,
      external_id: c.externalId,
      name: c.name,
      email: c.email,
      phone: c.phone,
      metadata: c.metadata,
      created_at: c.createdAt.toISOString(),
      updated_at: c.updatedAt.toISOString(),
    };
  }
}
