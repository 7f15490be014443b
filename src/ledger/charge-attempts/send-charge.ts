import { Inject, Injectable, Logger } from '@nestjs/common';
import { BillingKeysService } from '../../billing-keys/billing-keys.service';
import { ConflictError } from '../../common/errors';
import { SecretBox } from '../../common/secret-box';
import { Runtime, RUNTIME } from '../../config/runtime';
import { BootpayGateway } from '../../gateway/bootpay.gateway';
import { failureOf } from '../../gateway/domain-errors';
import {
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayUnknownOutcomeError,
} from '../../gateway/gateway.errors';
import { PaymentEntity } from '../../payments/payment.entity';
import { CHARGE_ATTEMPTS_LOG_CONTEXT, ChargeOutcome, ClaimedCharge } from './attempt-shared';

/** The outcome of an attempt whose billing key was deleted: a hard decline, nothing sent. */
const KEY_DELETED: ChargeOutcome = {
  kind: 'declined',
  failure: { code: 'billing_key_deleted', pg_code: null, message: 'The billing key was deleted', hard: true },
};

/** A stored billing key this instance cannot decrypt (another encryption key): a local fault, nothing sent. */
const KEY_UNREADABLE: ChargeOutcome = {
  kind: 'local_fault',
  failure: {
    code: 'local_fault',
    pg_code: null,
    message: "The billing key could not be decrypted with this instance's BILLING_KEY_ENCRYPTION_KEY; nothing was sent",
    hard: false,
  },
};

/**
 * Sends a recorded attempt to Bootpay and says what Bootpay answered (see ChargeOutcome); records nothing: the
 * outcome is settled by the caller.
 */
@Injectable()
export class SendChargeAction {
  private readonly logger = new Logger(CHARGE_ATTEMPTS_LOG_CONTEXT);

  constructor(
    private readonly gateway: BootpayGateway,
    private readonly billingKeys: BillingKeysService,
    private readonly box: SecretBox,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /** Sends a claimed charge, its billing key decrypted just now and forgotten right after. */
  async sendClaimed(claim: ClaimedCharge): Promise<ChargeOutcome> {
    const ciphertext = claim.keyCiphertext;
    claim.keyCiphertext = null;
    let key: string;
    if (!ciphertext) return KEY_DELETED;
    try {
      key = this.box.decrypt(ciphertext, claim.payment.billingKeyId);
    } catch {
      return KEY_UNREADABLE;
    }
    return this.charge(claim.payment, key);
  }

  /**
   * Sends an open attempt to Bootpay. A re-send of an attempt whose first send had no answer uses the same
   * order_id: Bootpay refuses it as a duplicate if the first went through, so this can never charge twice.
   */
  async send(payment: PaymentEntity): Promise<ChargeOutcome> {
    let key: string;
    try {
      key = await this.billingKeys.reveal(payment.billingKeyId);
    } catch (err) {
      // A deleted key is a decline; anything else (decryption with another key, the database) is a local fault.
      if (err instanceof ConflictError && err.code === 'billing_key_deleted') return KEY_DELETED;
      this.logger.error({
        message: 'billing key could not be read; nothing sent',
        payment_id: payment.id,
        error_name: err instanceof Error ? err.name : typeof err,
      });
      return KEY_UNREADABLE;
    }
    return this.charge(payment, key);
  }

  private async charge(payment: PaymentEntity, key: string): Promise<ChargeOutcome> {
    try {
      const receipt = await this.gateway.charge({
        billingKey: key,
        orderId: payment.orderId,
        orderName: payment.orderName,
        price: payment.amount,
        taxFree: payment.taxFreeAmount,
        feedbackUrl: this.runtime.config.publicBaseUrl ? `${this.runtime.config.publicBaseUrl}/v1/webhooks/bootpay` : undefined,
        metadata: { subscription_id: payment.subscriptionId, payment_id: payment.id },
      });
      return { kind: 'succeeded', receipt };
    } catch (err) {
      return this.classify(err);
    }
  }

  private classify(err: unknown): ChargeOutcome {
    if (err instanceof GatewayDuplicateError) return { kind: 'succeeded', receipt: null };
    if (err instanceof GatewayDeclinedError || err instanceof GatewayInvalidBillingKeyError) {
      return { kind: 'declined', failure: failureOf(err) };
    }
    if (err instanceof GatewayUnknownOutcomeError) return { kind: 'unknown', reason: err.reason };
    if (err instanceof GatewayError) return { kind: 'not_charged', failure: failureOf(err) };
    // Anything unexpected after the request may have left: treat as unknown, never as a decline.
    this.logger.error({ message: 'unexpected error while charging', error_name: err instanceof Error ? err.name : typeof err });
    return { kind: 'unknown', reason: 'unexpected_error' };
  }
}
