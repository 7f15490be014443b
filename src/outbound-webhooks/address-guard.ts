import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses a webhook must never reach unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE allows them: this host, the private
 * networks behind it and the cloud metadata service (169.254.169.254). IPv4-mapped IPv6 addresses
 * (::ffff:127.0.0.1) are checked as the IPv4 address they carry.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", 0.0.0.0 reaches this host
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 of any IPv4 address, private ones included
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** Whether an IP address is loopback, private, link-local, unique-local or otherwise not a public address. */
export function isPrivateAddress(address: string): boolean {
  const kind = isIP(address);
  if (kind === 0) return true;
  return PRIVATE.check(address, kind === 4 ? 'ipv4' : 'ipv6');
}

/** The host of a URL as an address or a name (without the brackets of an IPv6 literal). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Names that always mean this host, whatever DNS says. */
function isLocalName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain';
}

export class PrivateAddressError extends Error {
  readonly code = 'EPRIVATEADDRESS';
  constructor(host: string) {
    super(`${host} is a loopback, private or link-local address`);
  }
}

/**
 * Checks a webhook URL at registration: an IP literal or a name that resolves (now) to a private address is refused.
 * A name that does not resolve yet is accepted: every delivery checks the address it connects to again.
 * Returns the reason to refuse, or null.
 */
export async function privateTargetOf(rawUrl: string, resolve = lookupAll, timeoutMs = 2000): Promise<string | null> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return null; // the DTO already refused it
  }
  const host = hostOf(url);
  if (isIP(host)) return isPrivateAddress(host) ? `${host} is a loopback, private or link-local address` : null;
  if (isLocalName(host)) return `${host} names this host`;
  let timer: NodeJS.Timeout | undefined;
  const addresses = await Promise.race([
    resolve(host).catch(() => [] as LookupAddress[]),
    new Promise<LookupAddress[]>((r) => (timer = setTimeout(() => r([]), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  const bad = addresses.find((a) => isPrivateAddress(a.address));
  return bad ? `${host} resolves to ${bad.address}, a loopback, private or link-local address` : null;
}

function lookupAll(host: string): Promise<LookupAddress[]> {
  return new Promise((res, rej) => dnsLookup(host, { all: true }, (err, addresses) => (err ? rej(err) : res(addresses))));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that refuses private addresses after DNS, at connection time: a name that resolved to a
 * public address at registration and to 127.0.0.1 now (DNS rebinding) is not connected to.
 */
export function guardedLookup(hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void {
  const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : typeof options.family === 'number' ? options.family : 0;
  dnsLookup(hostname, { all: true, family }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad || !addresses.length) return callback(new PrivateAddressError(hostname), []);
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}
