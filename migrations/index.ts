import { Foundation1763900000000 } from './1763900000000-Foundation';
import { Subscriptions1763900100000 } from './1763900100000-Subscriptions';
import { ChargeRuns1763900200000 } from './1763900200000-ChargeRuns';
import { Reservations1763900300000 } from './1763900300000-Reservations';
import { OutboundWebhooks1763900500000 } from './1763900500000-OutboundWebhooks';
import { Refunds1763900400000 } from './1763900400000-Refunds';
import { OperatorActors1763900600000 } from './1763900600000-OperatorActors';
import { Ledger1763900610000 } from './1763900610000-Ledger';
import { CreditBalance1763900620000 } from './1763900620000-CreditBalance';
import { RefundSource1763900630000 } from './1763900630000-RefundSource';
import { SecretsStaySecret1763900700000 } from './1763900700000-SecretsStaySecret';
import { Operators1763900800000 } from './1763900800000-Operators';
import { OperatorPasswordChange1763900810000 } from './1763900810000-OperatorPasswordChange';
import { Reconciliation1763901000000 } from './1763901000000-Reconciliation';
import { Consents1763901100000 } from './1763901100000-Consents';

/** Every migration, in order. New migrations are appended here (no globbing: the same list runs from ts and from dist). */
export const MIGRATIONS = [
  Foundation1763900000000,
  Subscriptions1763900100000,
  ChargeRuns1763900200000,
  Reservations1763900300000,
  OutboundWebhooks1763900500000,
  Refunds1763900400000,
  OperatorActors1763900600000,
  Ledger1763900610000,
  CreditBalance1763900620000,
  RefundSource1763900630000,
  SecretsStaySecret1763900700000,
  Operators1763900800000,
  OperatorPasswordChange1763900810000,
  Reconciliation1763901000000,
  Consents1763901100000,
];
