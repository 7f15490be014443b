import type { OpenAPIObject } from '@nestjs/swagger';

type Json = Record<string, unknown>;
type Operation = {
  parameters?: Json[];
  requestBody?: { content?: Record<string, { schema?: Json }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Json }> }>;
  security?: Json[];
};

const ERROR_SCHEMA = 'ErrorBody';

/** The common error body, as GlobalExceptionFilter writes it. */
const errorBodySchema: Json = {
  type: 'object',
  required: ['status_code', 'error', 'code', 'message', 'details'],
  properties: {
    status_code: { type: 'integer', example: 400 },
    error: { type: 'string', example: 'Bad Request' },
    code: { type: 'string', example: 'invalid_request' },
    message: { type: 'string', example: 'card_no must be 14 to 16 digits' },
    details: {
      type: 'array',
      items: {
        type: 'object',
        required: ['field', 'message'],
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
    request_id: { type: 'string', description: 'On 5xx answers: the X-Request-Id header and the id of the log line' },
  },
  additionalProperties: true,
};

const pageSchema: Json = {
  type: 'object',
  required: ['data', 'has_more', 'next_cursor'],
  properties: {
    data: { type: 'array', items: { type: 'object' } },
    has_more: { type: 'boolean' },
    next_cursor: { type: 'string', nullable: true, description: 'Pass as cursor to get the next page' },
  },
};

const WHY: Record<string, string> = {
  '400':
    'The request is invalid (a field, a query parameter, a path id that is not a UUID, malformed or too deeply nested JSON, an unknown field); details name each problem',
  '401': 'No API key, or not a valid one',
  '402': 'The payment was declined (failure: {code, pg_code, message, hard})',
  '403': 'The API key does not have the role this operation needs',
  '404': 'Nothing has this id',
  '409': 'Refused in the current state (the reason and the allowed states are in the body), or a request with the same Idempotency-Key is still running',
  '413': 'The body is larger than 100 kB',
  '415': 'The body is not application/json',
  '422': "A reference does not fit (another customer's billing key, an unknown plan), or an Idempotency-Key reused with another body",
  '429': "Too many calls from this address; retry after the Retry-After header's seconds",
  '502': 'Bootpay answered with an error',
  '503': 'Bootpay could not be reached',
};

/** Operations whose action may charge a card (and so answer 402). */
const CHARGING = [
  /^\/v1\/subscriptions$/,
  /^\/v1\/subscriptions\/\{id\}\/(change-plan|billing-key|retry|resume)$/,
  /^\/v1\/customers\/\{id\}\/billing-keys$/,
  /^\/v1\/payments\/\{id\}\/refunds$/,
];
/** Operations that ask Bootpay (and so answer 503 when it cannot be reached). */
const ASKS_BOOTPAY = [
  /^\/v1\/subscriptions/,
  /^\/v1\/customers\/\{id\}\/billing-keys$/,
  /^\/v1\/billing-keys\/\{id\}$/,
  /^\/v1\/payments\/\{id\}\/refunds$/,
  /^\/v1\/reports\/reconciliation$/,
  /^\/v1\/webhooks\/bootpay$/,
  /^\/v1\/charge-runs$/,
];

/**
 * Completes the document Nest builds from the decorators so that it states the contract the server enforces:
 * - every operation lists its error answers with the common error schema (400 for input, 401/403 where a key is
 *   needed, 404 where the path names something, 409/422 for writes, 402 where a card may be charged, 503 where
 *   Bootpay is asked, 413/415 where a body is read, 429 on Bootpay's webhook);
 * - path ids are UUIDs, and request bodies refuse unknown fields (additionalProperties: false);
 * - every answer has a schema (a page of results for lists, an object otherwise, where a controller names none).
 */
export function completeOpenApiDocument(doc: OpenAPIObject): OpenAPIObject {
  const components = (doc.components ??= {}) as { schemas?: Record<string, Json> };
  const schemas = (components.schemas ??= {});
  schemas[ERROR_SCHEMA] = errorBodySchema;
  for (const schema of Object.values(schemas)) {
    if (schema !== errorBodySchema && schema.type === 'object' && schema.additionalProperties === undefined && isRequestSchema(doc, schema)) {
      schema.additionalProperties = false;
    }
  }
  const errorContent = { 'application/json': { schema: { $ref: `#/components/schemas/${ERROR_SCHEMA}` } } };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, Operation>)) {
      if (!['get', 'post', 'patch', 'put', 'delete'].includes(method)) continue;
      const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path');
      for (const p of pathParams) p.schema = { type: 'string', format: 'uuid' };
      const isList = method === 'get' && (op.parameters ?? []).some((p) => p.in === 'query' && p.name === 'cursor');
      const responses = (op.responses ??= {});
      for (const [status, r] of Object.entries(responses)) {
        const code = Number(status);
        if (code >= 400) r.content = errorContent;
        else if (code !== 204 && !r.content) r.content = { 'application/json': { schema: isList ? pageSchema : { type: 'object' } } };
      }
      const secured = (op.security ?? doc.security ?? []).length > 0 && !path.startsWith('/v1/webhooks/') && path !== '/health';
      const write = method !== 'get';
      const errors = new Set<string>();
      if (path !== '/health') errors.add('400');
      if (secured) {
        errors.add('401');
        errors.add('403');
      }
      if (pathParams.length) errors.add('404');
      if (write) {
        errors.add('409');
        errors.add('422');
        if (method !== 'delete') {
          errors.add('413');
          errors.add('415');
        }
      }
      if (write && CHARGING.some((re) => re.test(path))) errors.add('402');
      if (ASKS_BOOTPAY.some((re) => re.test(path))) {
        errors.add('502');
        errors.add('503');
      }
      if (path === '/v1/webhooks/bootpay') errors.add('429');
      if (path === '/health') errors.add('503');
      for (const status of errors) {
        if (!responses[status]) responses[status] = { description: WHY[status], content: errorContent };
      }
    }
  }
  return doc;
}

/** Whether a component schema is the body of some request (those refuse unknown fields). */
function isRequestSchema(doc: OpenAPIObject, schema: Json): boolean {
  const schemas = (doc.components?.schemas ?? {}) as Record<string, Json>;
  const name = Object.keys(schemas).find((k) => schemas[k] === schema);
  if (!name) return false;
  const ref = `#/components/schemas/${name}`;
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item as Record<string, Operation>)) {
      const s = op?.requestBody?.content?.['application/json']?.schema;
      if (s && s.$ref === ref) return true;
    }
  }
  return false;
}
