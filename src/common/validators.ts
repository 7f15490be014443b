import { registerDecorator, ValidateIf, ValidationArguments, ValidationOptions } from 'class-validator';

/** Metadata: a flat object of at most 20 string values (keys 1-40 of [A-Za-z0-9_], values up to 500 chars). */
export function IsMetadata(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isMetadata',
      target: object.constructor,
      propertyName,
      options: {
        message: (a: ValidationArguments) =>
          `${a.property} must be an object of at most 20 string values, keys of 1-40 letters, digits or _ and values of at most 500 characters`,
        ...options,
      },
      validator: {
        validate(value: unknown) {
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
          if (Object.getPrototypeOf(value) !== Object.prototype) return false;
          const entries = Object.entries(value as Record<string, unknown>);
          if (entries.length > 20) return false;
          return entries.every(([k, v]) => /^[A-Za-z0-9_]{1,40}$/.test(k) && typeof v === 'string' && v.length <= 500);
        },
      },
    });
}

/** Printable text without control characters, not blank. */
export function IsPlainText(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isPlainText',
      target: object.constructor,
      propertyName,
      options: { message: (a: ValidationArguments) => `${a.property} must be non-blank text without control characters`, ...options },
      validator: {
        validate(value: unknown) {
          // eslint-disable-next-line no-control-regex
          return typeof value === 'string' && value.trim().length > 0 && !/[\u0000-\u001f\u007f]/.test(value);
        },
      },
    });
}

/** Korean phone numbers: mobile (010-1234-5678), landline (02-123-4567) or +82 forms; hyphens optional. */
export const KOREAN_PHONE = /^(\+82-?|0)(1[016789]|2|[3-6][1-5]|70)-?\d{3,4}-?\d{4}$/;

export function normalizePhone(phone: string): string {
  const digits = phone.replace(/-/g, '');
  return digits.startsWith('+82') ? '0' + digits.slice(3) : digits;
}

/**
 * Like class-validator's IsOptional, but only for a missing field: `null` is validated like any value (and so
 * refused unless the field says otherwise). Fields that may be cleared with null use their own ValidateIf.
 */
export function Optional(options?: ValidationOptions) {
  return ValidateIf((_object: object, value: unknown) => value !== undefined, options);
}
