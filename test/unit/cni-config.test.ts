// Loading CNI network configs like kubelet/libcni: sorted by name, .conf wrapped into a
// one-plugin list, invalid files reported and skipped, the first valid one is the pod network.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CniConfigError, defaultNetwork, loadNetworks, parseConf, parseConfList } from '../../src/cni';

const DIR = path.resolve(__dirname, '../fixtures/cni/conf');

describe('loadNetworks', () => {
  it('loads valid files in name order and reports each invalid one by file', () => {
    const { networks, invalid } = loadNetworks(DIR);
    expect(networks.map((n) => [n.name, path.basename(n.file)])).toEqual([
      ['first', '10-first.conflist'],
      ['single', '20-single.conf'],
      ['as-json', '30-list.json'],
    ]);
    expect(invalid.map((e) => path.basename(e.file))).toEqual([
      '05-broken.conflist',
      '07-noplugins.conflist',
      '08-oldversion.conf',
    ]);
    expect(invalid[0]!.message).toMatch(/05-broken.conflist": not JSON/);
    expect(invalid[1]!.message).toMatch(/"plugins" must be a non-empty list/);
    expect(invalid[2]!.message).toMatch(/"cniVersion" "0.2.0" is not one of/);
  });

  it('wraps a single-plugin .conf into a list without name/cniVersion in the plugin', () => {
    const single = loadNetworks(DIR).networks[1]!;
    expect(single).toMatchObject({ cniVersion: '0.4.0', name: 'single', disableCheck: false });
    expect(single.plugins).toEqual([
      { type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '10.1.0.0/24' } },
    ]);
  });

  it('picks the first valid network as the pod network', () => {
    expect(defaultNetwork(DIR).name).toBe('first');
  });

  it('says why there is no pod network: missing dir, empty dir, only bad files', () => {
    expect(() => defaultNetwork('/nonexistent/cni')).toThrow(/cannot read directory/);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-cniconf-'));
    try {
      expect(() => defaultNetwork(tmp)).toThrow(/no .conflist, .conf or .json files/);
      fs.writeFileSync(path.join(tmp, '99-bad.conf'), '{"name":"x"}');
      expect(() => defaultNetwork(tmp)).toThrow(CniConfigError);
      expect(() => defaultNetwork(tmp)).toThrow(/99-bad.conf": "cniVersion" undefined/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('parse', () => {
  it('names the bad field and value', () => {
    expect(() => parseConfList('{"cniVersion":"1.0.0","name":"a b","plugins":[{"type":"x"}]}', 'f')).toThrow(
      /"name" "a b" is not a valid network name/,
    );
    expect(() => parseConfList('{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}', 'f')).toThrow(
      /plugins\[0\].type "..\/x" is not a plugin name/,
    );
    expect(() => parseConf('[1]', 'f')).toThrow(/not a JSON object/);
    expect(
      parseConfList('{"cniVersion":"1.1.0","name":"n","disableCheck":true,"plugins":[{"type":"x"}]}').disableCheck,
    ).toBe(true);
  });
});

describe('bundled config', () => {
  it('deploy/cni/10-tapwire.conflist is a valid pod network', () => {
    const { networks, invalid } = loadNetworks(path.resolve(__dirname, '../../deploy/cni'));
    expect(invalid).toEqual([]);
    expect(networks.map((n) => [n.name, n.plugins.map((p) => p.type)])).toEqual([['tapwire', ['bridge', 'portmap']]]);
  });
});
