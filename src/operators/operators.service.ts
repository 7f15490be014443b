import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { Clock } from '../common/clock';
import { ConflictError, InvalidInputError } from '../common/errors';
import { isUniqueViolation, returnedRows } from '../common/db-errors';
import { dummyPasswordHash, generatePassword, hashPassword, verifyPassword } from './password';

export type OperatorRole = 'finance' | 'viewer';
export const OPERATOR_ROLES: readonly OperatorRole[] = ['finance', 'viewer'];

/** Console security settings (see README "Finance console"). */
export const SESSION_IDLE_MS = 30 * 60 * 1000;
export const SESSION_ABSOLUTE_MS = 12 * 60 * 60 * 1000;
export const MAX_FAILED_SIGN_INS = 5;
export const LOCK_OUT_MS = 15 * 60 * 1000;
/** last_seen_at is written at most this often per session (every page view would otherwise be a write). */
const TOUCH_EVERY_MS = 60 * 1000;

export interface Operator {
  id: string;
  email: string;
  name: string | null;
  role: OperatorRole;
  lockedUntil: Date | null;
  lastSignInAt: Date | null;
  /** Signed in with a password printed by the CLI or at the first start: must choose their own before anything else. */
  mustChangePassword: boolean;
  createdAt: Date;
}

export interface OperatorSession {
  /** The SHA-256 of the cookie's token (the row's id). */
  id: string;
  operator: Operator;
  csrfToken: string;
  expiresAt: Date;
}

export type SignInResult =
  { kind: 'signed_in'; operator: Operator; token: string; session: OperatorSession } | { kind: 'invalid' } | { kind: 'locked'; until: Date };

interface OperatorRow {
  id: string;
  email: string;
  name: string | null;
  role: OperatorRole;
  password_hash: string;
  locked_until: Date | null;
  last_sign_in_at: Date | null;
  must_change_password: boolean;
  created_at: Date;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

export function sessionIdOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** How an operator appears in the audit trail: actor_type operator, the operator's id and name. */
export function operatorActor(op: Operator): Actor {
  return { type: 'operator', apiKeyId: op.id, name: (op.name || op.email).slice(0, 100), role: 'admin' };
}

function toOperator(r: OperatorRow): Operator {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    lockedUntil: r.locked_until,
    lastSignInAt: r.last_sign_in_at,
    mustChangePassword: r.must_change_password,
    createdAt: r.created_at,
  };
}

/**
 * Console operators: named people who sign in with an email and a password (scrypt), never with an API key.
 * Sessions are rows keyed by the SHA-256 of a random token that only the browser's cookie holds; each has its CSRF
 * token, an idle time-out and an absolute limit. Five wrong passwords in a row lock the account for 15 minutes.
 */
@Injectable()
export class OperatorsService {
  private readonly logger = new Logger(OperatorsService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
  ) {}

  /** Creates an operator with a generated password, returned in clear once (only its hash is kept). */
  async create(input: { email: string; role: OperatorRole; name?: string | null }): Promise<{ operator: Operator; password: string }> {
    const email = (input.email ?? '').trim();
    const name = input.name?.trim() || null;
    const errors = [];
    if (!EMAIL.test(email) || email.length > 320) errors.push({ field: 'email', message: 'email must be an email address' });
    if (!OPERATOR_ROLES.includes(input.role)) errors.push({ field: 'role', message: 'role must be finance or viewer' });
    if (name !== null && name.length > 100) errors.push({ field: 'name', message: 'name must be at most 100 characters' });
    if (errors.length) throw new InvalidInputError(errors, errors.map((e) => e.message).join('; '));
    const password = generatePassword();
    const now = this.clock.now();
    try {
      const [row]: OperatorRow[] = await this.db.query(
        `INSERT INTO operators (email, name, role, password_hash, must_change_password, created_at, updated_at) VALUES ($1, $2, $3, $4, true, $5, $5)
         RETURNING id, email, name, role, password_hash, locked_until, last_sign_in_at, must_change_password, created_at`,
        [email, name, input.role, await hashPassword(password), now],
      );
      return { operator: toOperator(row), password };
    } catch (err) {
      if (isUniqueViolation(err, 'operators_email_unique')) throw new ConflictError('operator_exists', `An operator with the email ${email} exists already`);
      throw err;
    }
  }

  async list(): Promise<Operator[]> {
    const rows: OperatorRow[] = await this.db.query(
      `SELECT id, email, name, role, password_hash, locked_until, last_sign_in_at, must_change_password, created_at FROM operators ORDER BY created_at, email`,
    );
    return rows.map(toOperator);
  }

  /** A new generated password (printed once); unlocks the account and signs out its sessions. */
  async resetPassword(email: string): Promise<string | null> {
    const password = generatePassword();
    return this.db.transaction(async (m) => {
      const rows = returnedRows<{ id: string }>(
        await m.query(
          `UPDATE operators SET password_hash = $2, must_change_password = true, failed_attempts = 0, locked_until = NULL, updated_at = $3
           WHERE lower(email) = lower($1) RETURNING id`,
          [email.trim(), await hashPassword(password), this.clock.now()],
        ),
      );
      if (!rows.length) return null;
      await m.query(`DELETE FROM operator_sessions WHERE operator_id = $1`, [rows[0].id]);
      return password;
    });
  }

  /**
   * Checks an email and a password. A locked account is refused whatever the password; a wrong password counts, and
   * the fifth in a row locks the account for {@link LOCK_OUT_MS}. An unknown email takes as long as a wrong password.
   */
  async signIn(email: string, password: string): Promise<SignInResult> {
    const now = this.clock.now();
    const [row]: OperatorRow[] = await this.db.query(
      `SELECT id, email, name, role, password_hash, locked_until, last_sign_in_at, must_change_password, created_at FROM operators WHERE lower(email) = lower($1)`,
      [email.trim().slice(0, 320)],
    );
    if (!row) {
      await verifyPassword(password, await dummyPasswordHash());
      return { kind: 'invalid' };
    }
    if (row.locked_until && row.locked_until.getTime() > now.getTime()) return { kind: 'locked', until: row.locked_until };
    if (!(await verifyPassword(password.slice(0, 1024), row.password_hash))) {
      const until = await this.countFailure(row.id, now);
      return until ? { kind: 'locked', until } : { kind: 'invalid' };
    }
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const expiresAt = new Date(now.getTime() + SESSION_ABSOLUTE_MS);
    await this.db.transaction(async (m) => {
      await m.query(`UPDATE operators SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = $2, updated_at = $2 WHERE id = $1`, [row.id, now]);
      await m.query(`INSERT INTO operator_sessions (id, operator_id, csrf_token, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`, [
        sessionIdOf(token),
        row.id,
        csrfToken,
        now,
        expiresAt,
      ]);
      // Sessions that can no longer be used go with the next sign-in.
      await m.query(`DELETE FROM operator_sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, [now, new Date(now.getTime() - SESSION_IDLE_MS)]);
    });
    const operator = toOperator({ ...row, locked_until: null, last_sign_in_at: now });
    return { kind: 'signed_in', operator, token, session: { id: sessionIdOf(token), operator, csrfToken, expiresAt } };
  }

  /**
   * Counts a wrong password; the fifth in a row locks the account for {@link LOCK_OUT_MS} (and ends its sessions).
   * Answers the lock's end when this one locked it.
   */
  private async countFailure(operatorId: string, now: Date): Promise<Date | null> {
    const [after] = returnedRows<{ locked_until: Date | null }>(
      await this.db.query(
        `UPDATE operators SET
           locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3::timestamptz + make_interval(secs => $4) ELSE locked_until END,
           failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END,
           updated_at = $3
         WHERE id = $1 RETURNING locked_until`,
        [operatorId, MAX_FAILED_SIGN_INS, now, LOCK_OUT_MS / 1000],
      ),
    );
    if (after?.locked_until && after.locked_until.getTime() > now.getTime()) {
      await this.db.query(`DELETE FROM operator_sessions WHERE operator_id = $1`, [operatorId]);
      this.logger.warn({ message: 'operator locked out after repeated wrong passwords', operator_id: operatorId });
      return after.locked_until;
    }
    return null;
  }

  /**
   * An operator chooses a new password (12 to 200 characters, not the current one), proving the current one. The
   * operator's other sessions end. A wrong current password counts like a wrong sign-in.
   */
  async changePassword(
    operatorId: string,
    current: string,
    next: string,
    keepSessionId?: string,
  ): Promise<{ kind: 'changed' } | { kind: 'wrong_current'; lockedUntil: Date | null } | { kind: 'invalid'; message: string }> {
    const now = this.clock.now();
    if (next.length < 12 || next.length > 200) return { kind: 'invalid', message: '새 비밀번호는 12자 이상 200자 이하여야 합니다.' };
    if (next === current) return { kind: 'invalid', message: '새 비밀번호는 지금 비밀번호와 달라야 합니다.' };
    const [row]: { password_hash: string }[] = await this.db.query(`SELECT password_hash FROM operators WHERE id = $1`, [operatorId]);
    if (!row || !(await verifyPassword(current.slice(0, 1024), row.password_hash))) {
      return { kind: 'wrong_current', lockedUntil: row ? await this.countFailure(operatorId, now) : null };
    }
    const hash = await hashPassword(next);
    await this.db.transaction(async (m) => {
      await m.query(`UPDATE operators SET password_hash = $2, must_change_password = false, failed_attempts = 0, updated_at = $3 WHERE id = $1`, [
        operatorId,
        hash,
        now,
      ]);
      await m.query(`DELETE FROM operator_sessions WHERE operator_id = $1 AND id <> $2`, [operatorId, keepSessionId ?? '']);
    });
    return { kind: 'changed' };
  }

  /** The session a cookie's token opens, if it is neither idle too long nor past its limit; marks it seen. */
  async session(token: string): Promise<OperatorSession | null> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
    const now = this.clock.now();
    const id = sessionIdOf(token);
    const [row]: (OperatorRow & { csrf_token: string; last_seen_at: Date; expires_at: Date })[] = await this.db.query(
      `SELECT o.id, o.email, o.name, o.role, o.password_hash, o.locked_until, o.last_sign_in_at, o.must_change_password, o.created_at,
              s.csrf_token, s.last_seen_at, s.expires_at
       FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
       WHERE s.id = $1 AND s.expires_at > $2 AND s.last_seen_at > $3`,
      [id, now, new Date(now.getTime() - SESSION_IDLE_MS)],
    );
    if (!row) return null;
    if (now.getTime() - row.last_seen_at.getTime() >= TOUCH_EVERY_MS) {
      await this.db.query(`UPDATE operator_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2`, [id, now]);
    }
    return { id, operator: toOperator(row), csrfToken: row.csrf_token, expiresAt: row.expires_at };
  }

  async signOut(token: string): Promise<void> {
    await this.db.query(`DELETE FROM operator_sessions WHERE id = $1`, [sessionIdOf(token)]);
  }

  /**
   * The first start of a development database: when no operator exists, creates one finance operator and returns its
   * email and password (to be printed with the first-start API keys). Instances starting together create it once.
   */
  async ensureInitialOperator(): Promise<{ email: string; password: string } | null> {
    return this.db.transaction(async (m) => {
      await m.query(`LOCK TABLE operators IN SHARE ROW EXCLUSIVE MODE`);
      const [{ n }] = await m.query(`SELECT count(*)::int AS n FROM operators`);
      if (n > 0) return null;
      const email = 'finance@example.com';
      const password = generatePassword();
      const now = this.clock.now();
      await m.query(
        `INSERT INTO operators (email, name, role, password_hash, must_change_password, created_at, updated_at) VALUES ($1, $2, 'finance', $3, true, $4, $4)`,
        [email, '재무 담당자', await hashPassword(password), now],
      );
      return { email, password };
    });
  }

  /** Whether a password printed earlier still signs this operator in (it is not printed again once changed). */
  async passwordStillValid(email: string, password: string): Promise<boolean> {
    const [row]: { password_hash: string }[] = await this.db.query(`SELECT password_hash FROM operators WHERE lower(email) = lower($1)`, [email]);
    return row ? verifyPassword(password, row.password_hash) : false;
  }
}
