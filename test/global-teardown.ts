import { Client } from 'pg';

export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.BT_TEST_ADMIN_URL;
  const template = process.env.BT_TEST_TEMPLATE;
  if (adminUrl && template && /^bt_template_\d+$/.test(template)) {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const dbs = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE 'bt\\_test\\_%' OR datname = $1`, [template]);
      for (const { datname } of dbs.rows as { datname: string }[]) {
        await admin
          .query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`)
          .catch((err: unknown) => console.warn(`could not drop test database ${datname}: ${String(err)}`));
      }
    } finally {
      await admin.end();
    }
  }
  const embedded = (globalThis as { __embeddedPg?: { stop(): Promise<void> } }).__embeddedPg;
  if (embedded) await embedded.stop();
}
