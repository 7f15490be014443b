import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { NotFoundError } from '../common/errors';
import { Page, paginate } from '../common/pagination';
import { ListPaymentsQueryDto, PaymentResponseDto } from './payment.dto';
import { PaymentEntity } from './payment.entity';
import { paymentView } from './payment-view';

@Injectable()
export class PaymentsService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async get(id: string): Promise<PaymentResponseDto> {
    const p = await this.db.getRepository(PaymentEntity).findOneBy({ id });
    if (!p) throw new NotFoundError('Payment', id);
    return this.map(p);
  }

  async list(q: ListPaymentsQueryDto): Promise<Page<PaymentResponseDto>> {
    const qb = this.db.getRepository(PaymentEntity).createQueryBuilder('p');
    if (q.subscription_id) qb.andWhere('p.subscription_id = :s', { s: q.subscription_id });
    if (q.customer_id) qb.andWhere('p.customer_id = :c', { c: q.customer_id });
    if (q.status) qb.andWhere('p.status = :st', { st: q.status });
    return paginate(qb, q, (p) => this.map(p), 'p');
  }

  map(p: PaymentEntity): PaymentResponseDto {
    return paymentView(p);
  }
}
