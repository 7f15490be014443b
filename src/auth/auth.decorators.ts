import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { ApiKeyRole } from './api-key.entity';

export const IS_PUBLIC = 'auth:public';
export const ROLES = 'auth:roles';

/** The route needs no API key (health only). */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** The route needs one of these roles. Routes without it accept any valid key. */
export const Roles = (...roles: ApiKeyRole[]) => SetMetadata(ROLES, roles);

/** Who is calling: recorded in audit events as the actor. */
export interface Actor {
  apiKeyId: string;
  name: string;
  role: ApiKeyRole;
}

export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): Actor => {
  const req = ctx.switchToHttp().getRequest<{ actor?: Actor }>();
  if (!req.actor) throw new Error('CurrentActor used on a public route');
  return req.actor;
});
