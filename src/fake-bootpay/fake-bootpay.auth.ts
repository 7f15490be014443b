/** The fake's authentication: Basic client_key/secret_key, and the legacy access tokens (POST /v2/request/token). */
import { randomBytes } from 'node:crypto';
import type { FakeCredentials } from './fake-bootpay.types';
import { FakeHttpError, Json } from './fake-bootpay.http';
import type { FakeSite } from './fake-bootpay.state';

const MINUTE = 60_000;
const TOKEN_SAME_FOR_MS = 25 * MINUTE;
const TOKEN_VALID_FOR_MS = 30 * MINUTE;
const TOKEN_EXPIRE_IN_S = 1800;

/** Issues access tokens and checks each /v2 request's Authorization header. Tokens outlive reset(). */
export class FakeAuth {
  private tokens = new Map<string, number>();
  private currentToken: { token: string; issuedAt: number } | null = null;

  constructor(
    private readonly credentials: FakeCredentials,
    private readonly fake: FakeSite,
    private readonly counters: { requests: number; tokens_issued: number },
  ) {}

  authenticate(header: string | undefined): void {
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const ck = i === -1 ? decoded : decoded.slice(0, i);
      const sk = i === -1 ? '' : decoded.slice(i + 1);
      if (ck !== this.credentials.clientKey) throw new FakeHttpError(401, 'APP_KEY_NOT_FOUND', '존재하지 않는 client_key 입니다');
      if (sk !== this.credentials.secretKey) throw new FakeHttpError(401, 'APP_SK_NOT_MATCHED', 'secret_key 값이 일치하지 않습니다');
      return;
    }
    if (header?.startsWith('Bearer ')) {
      const token = header.slice(7);
      const issuedAt = this.tokens.get(token);
      if (issuedAt !== undefined && this.fake.now().getTime() - issuedAt < TOKEN_VALID_FOR_MS) return;
    }
    throw new FakeHttpError(401, 'TOKEN_KEY_INVALID', 'ACCESS TOKEN 값을 확인해주세요');
  }

  issueToken(body: Json): Json {
    if (body.application_id !== this.credentials.applicationId) {
      throw new FakeHttpError(401, 'APP_KEY_NOT_FOUND', '존재하지 않는 application_id 입니다');
    }
    if (body.private_key !== this.credentials.privateKey) {
      throw new FakeHttpError(401, 'APP_SK_NOT_MATCHED', 'private_key 값이 일치하지 않습니다');
    }
    const now = this.fake.now().getTime();
    if (!this.currentToken || now - this.currentToken.issuedAt >= TOKEN_SAME_FOR_MS || now < this.currentToken.issuedAt) {
      for (const [t, at] of this.tokens) if (now - at >= TOKEN_VALID_FOR_MS) this.tokens.delete(t);
      this.currentToken = { token: randomBytes(32).toString('hex'), issuedAt: now };
      this.tokens.set(this.currentToken.token, now);
      this.counters.tokens_issued += 1;
    }
    return { access_token: this.currentToken.token, expire_in: TOKEN_EXPIRE_IN_S };
  }
}
