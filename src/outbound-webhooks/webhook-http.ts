import { request as httpRequest, RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, hostOf, isPrivateAddress, PrivateAddressError } from './address-guard';

export interface PostOptions {
  timeoutMs: number;
  /** OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: connect to loopback and private addresses too (development, tests). */
  allowPrivate: boolean;
}

/**
 * POSTs a webhook and answers the HTTP status (redirects are not followed). Unless private addresses are allowed,
 * the address actually connected to is checked after DNS: an IP literal before connecting, a name in `lookup`.
 * Throws on any failure to get an answer within the time-out (the whole exchange, headers included).
 */
export function postWebhook(rawUrl: string, headers: Record<string, string>, body: string, o: PostOptions): Promise<number> {
  const url = new URL(rawUrl);
  const host = hostOf(url);
  if (!o.allowPrivate && isIP(host) && isPrivateAddress(host)) return Promise.reject(new PrivateAddressError(host));
  const options: RequestOptions = {
    method: 'POST',
    headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
    signal: AbortSignal.timeout(o.timeoutMs),
    ...(o.allowPrivate ? {} : { lookup: guardedLookup as unknown as RequestOptions['lookup'] }),
    agent: false,
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = send(url, options, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      res.destroy();
      resolve(status);
    });
    req.on('error', reject);
    req.end(body);
  });
}
