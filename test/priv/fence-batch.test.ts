// The fence as tapwire sends it (one nf_tables netlink batch, fence/batch.ts) against the
// same policy as nft script run through libnftables (fence/ruleset.ts): the kernel must
// end up with the same table, expression for expression (`nft --debug=netlink list`), for
// one NIC, for other names and MACs (the batch is encoded once per NIC count and copied),
// for many NICs (a batch bigger than a socket's default send buffer), and again when
// applied over itself.
import { afterEach, expect, it } from 'vitest';
import { applyFence, type FenceNic } from '../../src/tapmanager/fence';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';

const missing = requireTools('nft');
const TABLE = 'twbatch';

const nic = (i: number, veth = `eth${i}`): FenceNic => ({
  bridge: `br${i}`,
  veth,
  tap: `tap${i}`,
  guestMac: `52:54:00:${(i + 16).toString(16)}:aB:0${i % 10}`,
});

async function viaLibnftables(ns: TestNetns, nics: FenceNic[]): Promise<void> {
  process.env.TAPWIRE_NFT = 'lib';
  try {
    await applyFence(ns.path, TABLE, nics);
  } finally {
    delete process.env.TAPWIRE_NFT;
  }
}

const listing = (ns: TestNetns, debug: boolean): string =>
  ns.exec('nft', [...(debug ? ['--debug=netlink'] : []), 'list', 'table', 'bridge', TABLE]);

describePrivileged('fence batch', () => {
  afterEach(() => removeAllNetns());

  const cases: [string, FenceNic[]][] = [
    ['one NIC', [nic(0)]],
    ['one NIC, other names and MAC', [{ bridge: 'b', veth: 'net1', tap: 'tapw-x.1', guestMac: '0a:58:0a:f4:00:2f' }]],
    ['two NICs', [nic(0), nic(1, 'net1')]],
    ['sixteen NICs', Array.from({ length: 16 }, (_x, i) => nic(i))],
  ];
  for (const [label, nics] of cases) {
    it(`${label}: the kernel holds what libnftables makes of the script, expression for expression`, async () => {
      if (missing) throw new Error(missing);
      const batch = createNetns('fba');
      const lib = createNetns('fbl');
      await applyFence(batch.path, TABLE, nics);
      await viaLibnftables(lib, nics);
      const want = listing(lib, true);
      expect(want).toContain('objref type 1 name nic0_spoof');
      expect(listing(batch, true)).toBe(want);
      expect(listing(batch, false)).toBe(listing(lib, false));
      // applied over itself: flushed and defined again, the same table (its rules with new handles)
      await applyFence(batch.path, TABLE, nics);
      const noHandles = (l: string): string => l.replace(/^(bridge \S+ \S+)[ \d]*$/gm, '$1');
      expect(noHandles(listing(batch, true))).toBe(noHandles(want));
    });
  }
});
