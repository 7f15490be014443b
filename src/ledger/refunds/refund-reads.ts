import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { NotFoundError } from '../../common/errors';
import { Page, paginate, PageQueryDto } from '../../common/pagination';
import { PaymentEntity } from '../../payments/payment.entity';
import { RefundEntity } from '../refund.entity';
import { refundView } from '../refund-view';
import { RefundView } from './refund-shared';

/** Reads: a payment's refunds, one refund, and the payment's existence check a refund request starts with. */
@Injectable()
export class RefundReads {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async list(paymentId: string, q: PageQueryDto): Promise<Page<RefundView>> {
    await this.paymentOrFail(paymentId);
    const qb = this.db.getRepository(RefundEntity).createQueryBuilder('r').where('r.payment_id = :p', { p: paymentId });
    return paginate(qb, q, refundView, 'r');
  }

  async get(refundId: string): Promise<RefundView> {
    const r = await this.db.getRepository(RefundEntity).findOneBy({ id: refundId });
    if (!r) throw new NotFoundError('Refund', refundId);
    return refundView(r);
  }

  async paymentOrFail(paymentId: string): Promise<void> {
    const exists = await this.db.getRepository(PaymentEntity).exists({ where: { id: paymentId } });
    if (!exists) throw new NotFoundError('Payment', paymentId);
  }
}
