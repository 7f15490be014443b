/**
 * Domain errors carry a kind (mapped to an HTTP status in one place, the global filter) and a stable code.
 * Services throw these; they never throw HttpException.
 */
export type ErrorKind =
  'validation' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'payment_failed' | 'unprocessable' | 'gateway_unavailable' | 'gateway_error';

export interface FieldError {
  field: string;
  message: string;
}

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
    /** Extra fields merged into the error body (for example the failed payment of a 402). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export class NotFoundError extends DomainError {
  constructor(resource: string, id: string) {
    super('not_found', `${resource.toLowerCase().replace(/ /g, '_')}_not_found`, `${resource} ${id} was not found`);
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, message: string, extra: Record<string, unknown> = {}) {
    super('conflict', code, message, [], extra);
  }
}

export class InvalidInputError extends DomainError {
  constructor(details: FieldError[], message = 'The request is invalid') {
    super('validation', 'invalid_request', message, details);
  }
}

export const STATUS_BY_KIND: Record<ErrorKind, number> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payment_failed: 402,
  unprocessable: 422,
  gateway_unavailable: 503,
  gateway_error: 502,
};
