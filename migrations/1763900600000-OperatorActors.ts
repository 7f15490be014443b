import { MigrationInterface, QueryRunner } from 'typeorm';

/** Audit events may be made by a named console operator as well as by an API key or the system. */
export class OperatorActors1763900600000 implements MigrationInterface {
  name = 'OperatorActors1763900600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE subscription_events DROP CONSTRAINT subscription_events_actor_type_check`);
    await q.query(
      `ALTER TABLE subscription_events ADD CONSTRAINT subscription_events_actor_type_check CHECK (actor_type IN ('api_key', 'operator', 'system'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE subscription_events DROP CONSTRAINT subscription_events_actor_type_check`);
    await q.query(`ALTER TABLE subscription_events ADD CONSTRAINT subscription_events_actor_type_check CHECK (actor_type IN ('api_key', 'system'))`);
  }
}
