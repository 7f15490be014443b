import { Injectable, PipeTransform } from '@nestjs/common';
import { InvalidInputError } from './errors';

/** For actions that take no fields: any field sent is refused, as on every other route. */
@Injectable()
export class NoBodyPipe implements PipeTransform<unknown, Record<string, never>> {
  transform(value: unknown): Record<string, never> {
    const keys = value && typeof value === 'object' ? Object.keys(value) : [];
    if (keys.length) throw new InvalidInputError(keys.slice(0, 20).map((k) => ({ field: k, message: `${k} is not a known field` })));
    return {};
  }
}
