import { guardedLookup, isPrivateAddress, privateTargetOf } from './address-guard';

describe(isPrivateAddress.name, () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fc00::1',
    'fdff::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:10.1.2.3',
    'not an ip',
  ])('should say %s is not public', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '192.169.0.1', '11.0.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8'])(
    'should say %s is public',
    (ip) => {
      expect(isPrivateAddress(ip)).toBe(false);
    },
  );
});

describe(privateTargetOf.name, () => {
  it('should refuse private literals and local names without asking DNS', async () => {
    const resolve = jest.fn();
    expect(await privateTargetOf('http://127.1:8080/x', resolve)).toMatch(/127\.0\.0\.1/);
    expect(await privateTargetOf('http://[::ffff:7f00:1]/x', resolve)).toMatch(/loopback/);
    expect(await privateTargetOf('http://LOCALHOST./x', resolve)).toMatch(/this host/);
    expect(resolve).not.toHaveBeenCalled();
  });

  it('should refuse a name that resolves to a private address, and accept one that resolves publicly or not at all', async () => {
    expect(
      await privateTargetOf('https://inside.example.com/x', async () => [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ]),
    ).toMatch(/10\.0\.0\.7/);
    expect(await privateTargetOf('https://outside.example.com/x', async () => [{ address: '93.184.216.34', family: 4 }])).toBeNull();
    expect(await privateTargetOf('https://unknown.example.com/x', async () => Promise.reject(new Error('ENOTFOUND')))).toBeNull();
  });
});

describe(guardedLookup.name, () => {
  it('should refuse to connect to localhost after DNS', (done) => {
    guardedLookup('localhost', { all: true }, (err) => {
      expect(err?.message).toMatch(/private|loopback/);
      done();
    });
  });
});
