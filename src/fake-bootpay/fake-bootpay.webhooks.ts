/**
 * The fake's webhook sender: posts the receipt of each completed, failed or cancelled payment to its feedback_url (else
 * the global webhook URL), retries with a doubling delay until the receiver answers 200 {"success":true}, and records
 * every attempt in the ledger.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { FakeBootpayOptions, LedgerWebhook } from './fake-bootpay.types';
import { isObject } from './fake-bootpay.http';
import type { FakeReceipts } from './fake-bootpay.receipts';
import type { FakeSite, FakeState, PaymentRec } from './fake-bootpay.state';

interface WebhookJob {
  entry: LedgerWebhook;
  url: string;
  payload: string;
  timer: NodeJS.Timeout | null;
  generation: number;
}

/** Pending webhook deliveries; reset() and stop() cancel them. */
export class FakeWebhooks {
  webhookUrl: string | null;
  private generation = 0;
  private pendingWebhooks = new Set<WebhookJob>();
  private idleWaiters: Array<() => void> = [];
  private readonly webhookHttpAgent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  private readonly webhookHttpsAgent = new https.Agent({ keepAlive: true, maxSockets: 128 });

  constructor(
    private readonly opts: FakeBootpayOptions,
    private readonly state: FakeState,
    private readonly fake: FakeSite,
    private readonly receipts: FakeReceipts,
    /** True once the server is stopping: a failed attempt is then not retried. */
    private readonly stopped: () => boolean,
  ) {
    this.webhookUrl = opts.webhookUrl ?? null;
  }

  /** Deliveries not yet done (delivered or given up). */
  get pending(): number {
    return this.pendingWebhooks.size;
  }

  /** Resolves when no webhook delivery is pending (delivered or given up). */
  idle(): Promise<void> {
    if (this.pendingWebhooks.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Closes the keep-alive sockets of the deliveries. */
  destroyAgents(): void {
    this.webhookHttpAgent.destroy();
    this.webhookHttpsAgent.destroy();
  }

  queueWebhook(p: PaymentRec, webhookType: string): void {
    const url = p.feedbackUrl ?? this.webhookUrl;
    if (!url) return;
    const entry: LedgerWebhook = { url, webhook_type: webhookType, receipt_id: p.receiptId, attempts: 0, delivered: false, done: false, history: [] };
    this.state.webhookEntries.push(entry);
    const job: WebhookJob = {
      entry,
      url,
      payload: JSON.stringify({ ...this.receipts.receiptJson(p, false), webhook_type: webhookType }),
      timer: null,
      generation: this.generation,
    };
    this.pendingWebhooks.add(job);
    this.deliver(job);
  }

  private deliver(job: WebhookJob): void {
    job.timer = null;
    let target: URL;
    try {
      target = new URL(job.url);
    } catch {
      this.webhookAttemptDone(job, null, 'invalid webhook url');
      return;
    }
    const isHttps = target.protocol === 'https:';
    let settled = false;
    const finish = (status: number | null, error?: string, responseBody?: string) => {
      if (settled) return;
      settled = true;
      let ok = false;
      if (status === 200 && responseBody !== undefined) {
        try {
          const parsed: unknown = JSON.parse(responseBody);
          ok = isObject(parsed) && parsed.success === true;
        } catch {
          ok = false;
        }
      }
      this.webhookAttemptDone(job, status, ok ? undefined : (error ?? (status === 200 ? 'body is not {"success":true}' : `HTTP ${status}`)), ok);
    };
    const req = (isHttps ? https : http).request(
      target,
      {
        method: 'POST',
        agent: isHttps ? this.webhookHttpsAgent : this.webhookHttpAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(job.payload) },
        timeout: this.opts.webhookTimeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 65536) chunks.push(c);
        });
        res.on('end', () => finish(res.statusCode ?? null, undefined, Buffer.concat(chunks).toString('utf8')));
        res.on('error', (e) => finish(res.statusCode ?? null, e.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('webhook timed out')));
    req.on('error', (e) => finish(null, e.message));
    req.end(job.payload);
  }

  private webhookAttemptDone(job: WebhookJob, status: number | null, error: string | undefined, ok = false): void {
    if (job.generation !== this.generation || !this.pendingWebhooks.has(job)) return;
    const entry = job.entry;
    entry.attempts += 1;
    entry.history.push({ at: this.fake.now().toISOString(), status_code: status, ok, ...(error && !ok ? { error } : {}) });
    const maxAttempts = 1 + (this.opts.webhookMaxRetries ?? 10);
    if (ok || entry.attempts >= maxAttempts || this.stopped()) {
      entry.delivered = ok;
      entry.done = true;
      this.pendingWebhooks.delete(job);
      this.notifyIdle();
      return;
    }
    const base = this.opts.webhookBaseDelayMs ?? 20;
    const delay = Math.min(base * 2 ** (entry.attempts - 1), this.opts.webhookMaxDelayMs ?? 2000);
    job.timer = setTimeout(() => this.deliver(job), delay);
  }

  cancelWebhooks(): void {
    this.generation += 1;
    for (const job of this.pendingWebhooks) {
      if (job.timer) clearTimeout(job.timer);
      job.entry.done = true;
    }
    this.pendingWebhooks.clear();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.pendingWebhooks.size !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
