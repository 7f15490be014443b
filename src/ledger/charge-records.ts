import { DataSource } from 'typeorm';
import { splitTaxFree } from '../billing-math';
import { GatewayReceipt, RECEIPT_STATUS } from '../gateway/gateway.types';
import { PaymentEntity } from '../payments/payment.entity';
import type { PlanEntity } from '../plans/plan.entity';
import type { SubscriptionEntity } from './subscription.entity';

/** Pure pieces of recording charges: whether a receipt fits its payment, what a charge costs the card, and how the run writes approvals from memory. */

/** Why a receipt does not fit the payment it names (order, status, price, tax-free part, payment id), or null. */
export function receiptMismatchOf(payment: Pick<PaymentEntity, 'id' | 'orderId' | 'amount' | 'taxFreeAmount'>, receipt: GatewayReceipt): string | null {
  if (receipt.orderId !== payment.orderId) return `order_id ${receipt.orderId} is not ${payment.orderId}`;
  if (receipt.status !== RECEIPT_STATUS.COMPLETED) return `status ${receipt.status} (${receipt.statusLocale || 'not approved'}) is not approved`;
  if (receipt.price !== payment.amount) return `price ${receipt.price} is not ${payment.amount}`;
  if (receipt.taxFree !== payment.taxFreeAmount) return `tax_free ${receipt.taxFree} is not ${payment.taxFreeAmount}`;
  const paymentIdOfReceipt = receipt.metadata && typeof receipt.metadata === 'object' ? (receipt.metadata as Record<string, unknown>).payment_id : undefined;
  if (paymentIdOfReceipt !== undefined && paymentIdOfReceipt !== payment.id) return `metadata.payment_id ${String(paymentIdOfReceipt)} is not ${payment.id}`;
  return null;
}

/** Masked card numbers compare on the digits both show (`457973******1234` and `4579-73**-****-1234`). */
export function sameMaskedCard(a: string, b: string): boolean {
  const x = a.replace(/[^0-9*]/g, '');
  const y = b.replace(/[^0-9*]/g, '');
  if (x.length !== y.length) return true; // different masking conventions: nothing to compare
  for (let i = 0; i < x.length; i++) if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  return true;
}

export interface ColumnWriter<E> {
  /** The fields of an entity as a JSON object by column name, times as epoch milliseconds. */
  values(entity: E): Record<string, unknown>;
  /** `column = value, ...` reading such an object from the SQL expression `source` (jsonb). */
  set(source: string): string;
}

/** Writes the given fields of an entity from memory in one statement, typed by the entity's own column metadata. */
export function columnWriter<E extends object>(db: DataSource, entity: new () => E, fields: readonly (keyof E & string)[]): ColumnWriter<E> {
  const meta = db.getMetadata(entity);
  const columns = fields.map((f) => {
    const column = meta.findColumnWithPropertyName(f);
    if (!column) throw new Error(`${meta.name} has no column for ${f}`);
    return { field: f, name: column.databaseName, type: String(column.type) };
  });
  return {
    values: (e) => {
      const out: Record<string, unknown> = {};
      for (const c of columns) out[c.name] = toJsonValue(e[c.field as keyof E]);
      return out;
    },
    set: (source) =>
      columns
        .map(
          (c) => `${c.name} = ${c.type === 'timestamptz' ? `to_timestamp((${source}->>'${c.name}')::float8 / 1000)` : `(${source}->>'${c.name}')::${c.type}`}`,
        )
        .join(', '),
  };
}

/** A JSON Date costs more than the rest of an approval: times travel as epoch milliseconds. */
function toJsonValue(v: unknown): unknown {
  return v instanceof Date ? v.getTime() : v;
}

/**
 * What a charge of `plan` costs the card: the price less the subscription's credit (up to the price), with the
 * tax-free part in proportion; `creditApplied` is taken from the balance when the charge is applied.
 */
export function chargeAmounts(sub: Pick<SubscriptionEntity, 'creditBalance'>, plan: Pick<PlanEntity, 'amount' | 'taxFreeAmount'>) {
  const creditApplied = Math.min(Math.max(0, sub.creditBalance ?? 0), plan.amount);
  const amount = plan.amount - creditApplied;
  const taxFreeAmount = creditApplied === 0 ? plan.taxFreeAmount : splitTaxFree(amount, plan.amount, plan.taxFreeAmount);
  return { amount, taxFreeAmount, creditApplied };
}
