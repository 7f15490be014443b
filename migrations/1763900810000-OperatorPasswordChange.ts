import { MigrationInterface, QueryRunner } from 'typeorm';

/** A password printed by the CLI or at the first start is for one sign-in: the operator then chooses their own. */
export class OperatorPasswordChange1763900810000 implements MigrationInterface {
  name = 'OperatorPasswordChange1763900810000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE operators ADD COLUMN must_change_password boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE operators DROP COLUMN must_change_password`);
  }
}
