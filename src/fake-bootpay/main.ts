/**
 * Standalone fake Bootpay server: `npm run fake-bootpay`.
 * Env: FAKE_BOOTPAY_PORT (7070), FAKE_BOOTPAY_HOST (127.0.0.1), FAKE_BOOTPAY_LATENCY_MS (0), FAKE_BOOTPAY_WEBHOOK_URL,
 * FAKE_BOOTPAY_SEED (1), FAKE_BOOTPAY_WEBHOOK_BASE_DELAY_MS (20).
 */
import { FakeBootpayServer } from './fake-bootpay.server';

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`${name} must be a non-negative integer, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const port = intEnv('FAKE_BOOTPAY_PORT', 7070);
  const host = process.env.FAKE_BOOTPAY_HOST || '127.0.0.1';
  const fake = new FakeBootpayServer({
    latencyMs: intEnv('FAKE_BOOTPAY_LATENCY_MS', 0),
    webhookUrl: process.env.FAKE_BOOTPAY_WEBHOOK_URL || undefined,
    seed: intEnv('FAKE_BOOTPAY_SEED', 1),
    webhookBaseDelayMs: intEnv('FAKE_BOOTPAY_WEBHOOK_BASE_DELAY_MS', 20),
  });
  const url = await fake.start(port, host);
  const c = fake.credentials;
  process.stdout.write(
    `fake-bootpay listening on ${url} (SDK entry point ${fake.apiBaseUrl}) client_key=${c.clientKey} secret_key=${c.secretKey} application_id=${c.applicationId} private_key=${c.privateKey}\n`,
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    fake.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`fake-bootpay failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
