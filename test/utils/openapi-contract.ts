/**
 * The OpenAPI document as a contract: checks that an answer's status is one the operation lists, and that its body
 * fits the schema listed for that status. A small validator of the schema subset Nest's document uses ($ref, type,
 * nullable, enum, required, properties, additionalProperties, items, allOf/oneOf/anyOf, bounds, pattern, formats).
 * Answers are checked closed: an object schema that lists properties (and says nothing of additionalProperties) is
 * the whole answer, so a field the server answers and the document does not list is drift too.
 */
type Schema = Record<string, unknown>;
type Doc = {
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: Schema }> }> }>>;
  components?: { schemas?: Record<string, Schema> };
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class OpenApiContract {
  private readonly routes: { method: string; template: string; re: RegExp }[] = [];

  constructor(readonly doc: Doc) {
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
        this.routes.push({ method: method.toUpperCase(), template, re });
      }
    }
    // Literal segments win over parameters (/v1/customers/x before /v1/customers/{id}).
    this.routes.sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0));
  }

  /** The operation of a request, or undefined for a path the document does not have. */
  operation(method: string, path: string): { template: string; method: string } | undefined {
    const bare = path.split('?')[0];
    const r = this.routes.find((x) => x.method === method.toUpperCase() && x.re.test(bare));
    return r ? { template: r.template, method: r.method } : undefined;
  }

  /** Problems of one answer against the document (empty when it fits). */
  check(method: string, path: string, status: number, body: unknown): string[] {
    const op = this.operation(method, path);
    if (!op) return [];
    const responses = this.doc.paths[op.template][op.method.toLowerCase()].responses ?? {};
    const response = responses[String(status)] ?? responses.default;
    if (!response) return [`${op.method} ${op.template}: status ${status} is not listed (listed: ${Object.keys(responses).join(', ')})`];
    const schema = response.content?.['application/json']?.schema;
    if (!schema) return status === 204 || body === undefined || body === '' ? [] : [`${op.method} ${op.template} ${status}: no schema for the answer`];
    return this.validate(schema, body, '$', 0, true).map((p) => `${op.method} ${op.template} ${status}: ${p}`);
  }

  /**
   * Problems of a value against a schema. `closed`: an object schema with properties and no additionalProperties
   * refuses fields it does not list (used for answers; request bodies say additionalProperties: false themselves).
   */
  validate(schema: Schema, value: unknown, at: string, depth = 0, closed = false): string[] {
    if (depth > 40) return [];
    if (value === null && schema.nullable) return [];
    if (typeof schema.$ref === 'string') {
      const name = schema.$ref.replace('#/components/schemas/', '');
      const target = this.doc.components?.schemas?.[name];
      return target ? this.validate(target, value, at, depth + 1, closed) : [`${at}: unknown $ref ${schema.$ref}`];
    }
    if (value === null) {
      const combined = ['allOf', 'oneOf', 'anyOf'].some((k) => Array.isArray(schema[k]));
      return schema.type === undefined && !combined ? [] : [`${at}: null where ${String(schema.type ?? 'a value')} is expected`];
    }
    const problems: string[] = [];
    // Parts of a composition each see only some of the fields: only a lone part (Nest's nullable $ref) stays closed.
    if (Array.isArray(schema.allOf)) {
      const parts = schema.allOf as Schema[];
      for (const s of parts) problems.push(...this.validate(s, value, at, depth + 1, closed && parts.length === 1));
    }
    for (const k of ['oneOf', 'anyOf'] as const) {
      if (Array.isArray(schema[k]) && !(schema[k] as Schema[]).some((s) => this.validate(s, value, at, depth + 1, closed).length === 0)) {
        problems.push(`${at}: fits none of ${k}`);
      }
    }
    if (Array.isArray(schema.enum) && !(schema.enum as unknown[]).includes(value))
      problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
    const type = schema.type as string | undefined;
    const is = (t: string) =>
      t === 'integer'
        ? Number.isInteger(value)
        : t === 'number'
          ? typeof value === 'number'
          : t === 'array'
            ? Array.isArray(value)
            : t === 'object'
              ? typeof value === 'object' && !Array.isArray(value)
              : typeof value === t;
    if (type && !is(type)) return [...problems, `${at}: ${JSON.stringify(value)?.slice(0, 60)} is not ${type}`];
    if (typeof value === 'string') {
      if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) problems.push(`${at}: longer than ${schema.maxLength}`);
      if (typeof schema.minLength === 'number' && value.length < schema.minLength) problems.push(`${at}: shorter than ${schema.minLength}`);
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value)) problems.push(`${at}: does not match ${schema.pattern}`);
      if (schema.format === 'uuid' && !UUID.test(value)) problems.push(`${at}: not a uuid`);
      if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time`);
    }
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum) problems.push(`${at}: below ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && value > schema.maximum) problems.push(`${at}: above ${schema.maximum}`);
    }
    if (Array.isArray(value) && schema.items) {
      value.forEach((v, i) => problems.push(...this.validate(schema.items as Schema, v, `${at}[${i}]`, depth + 1, closed)));
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const refusesOthers = schema.additionalProperties === false || (closed && schema.properties !== undefined && schema.additionalProperties === undefined);
      for (const r of (schema.required ?? []) as string[]) if (!Object.prototype.hasOwnProperty.call(value, r)) problems.push(`${at}: has no ${r}`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (Object.prototype.hasOwnProperty.call(props, k)) problems.push(...this.validate(props[k], v, `${at}.${k}`, depth + 1, closed));
        else if (refusesOthers) problems.push(`${at}: unexpected field ${k}`);
        else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
          problems.push(...this.validate(schema.additionalProperties as Schema, v, `${at}.${k}`, depth + 1, closed));
        }
      }
    }
    return problems;
  }
}
