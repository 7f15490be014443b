import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A downgrade's credit is kept on the subscription as a balance in won and applied to its next charges before the
 * card: a charge records the credit it used; one the credit covers entirely is a payment of 0 won at the card that
 * never goes to Bootpay.
 */
export class CreditBalance1763900620000 implements MigrationInterface {
  name = 'CreditBalance1763900620000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE subscriptions ADD COLUMN credit_balance bigint NOT NULL DEFAULT 0 CONSTRAINT subscriptions_credit_balance_check CHECK (credit_balance >= 0)`,
    );
    await q.query(
      `ALTER TABLE payments ADD COLUMN credit_applied bigint NOT NULL DEFAULT 0 CONSTRAINT payments_credit_applied_check CHECK (credit_applied >= 0)`,
    );
    await q.query(`ALTER TABLE payments DROP CONSTRAINT payments_amount_positive`);
    await q.query(`ALTER TABLE payments ADD CONSTRAINT payments_amount_positive CHECK (amount > 0 OR (amount = 0 AND credit_applied > 0))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE payments DROP CONSTRAINT payments_amount_positive`);
    await q.query(`DELETE FROM payments WHERE amount = 0`);
    await q.query(`ALTER TABLE payments ADD CONSTRAINT payments_amount_positive CHECK (amount > 0)`);
    await q.query(`ALTER TABLE payments DROP COLUMN credit_applied`);
    await q.query(`ALTER TABLE subscriptions DROP COLUMN credit_balance`);
  }
}
