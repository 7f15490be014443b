import { MigrationInterface, QueryRunner } from 'typeorm';

/** A refund made at Bootpay (its admin console), learnt from its webhook or a receipt, is recorded too: `source`. */
export class RefundSource1763900630000 implements MigrationInterface {
  name = 'RefundSource1763900630000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE refunds ADD COLUMN source varchar(16) NOT NULL DEFAULT 'service' CONSTRAINT refunds_source_check CHECK (source IN ('service', 'bootpay'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE refunds DROP COLUMN source`);
  }
}
