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
  /** Who acts: an API key (the default), or a named operator signed in to the console. */
  type?: 'api_key' | 'operator';
  /** The API key's id, or the operator's id. */
  apiKeyId: string;
  name: string;
  role: ApiKeyRole;
}

export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): Actor => {
  const req = ctx.switchToHttp().getRequest<{ actor?: Actor }>();
  if (!req.actor) throw new Error('CurrentActor used on a public route');
  return req.actor;
});
