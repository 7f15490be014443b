import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError } from '../common/errors';
import type { ApiKeyRole } from './api-key.entity';
import { ApiKeysService } from './api-keys.service';
import { Actor, IS_PUBLIC, ROLES } from './auth.decorators';

/** Every route needs `Authorization: Bearer <api key>` unless marked @Public(); @Roles() narrows it to roles. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; actor?: Actor }>();
    const header = req.headers['authorization'];
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      throw new DomainError('unauthorized', 'missing_api_key', 'Send an API key as Authorization: Bearer <key>');
    }
    const actor = await this.keys.authenticate(match[1]);
    if (!actor) throw new DomainError('unauthorized', 'invalid_api_key', 'The API key is not valid');
    req.actor = actor;
    const roles = this.reflector.getAllAndOverride<ApiKeyRole[] | undefined>(ROLES, targets);
    if (roles && !roles.includes(actor.role)) {
      throw new DomainError('forbidden', 'insufficient_role', `This action needs the ${roles.join(' or ')} role`);
    }
    return true;
  }
}
