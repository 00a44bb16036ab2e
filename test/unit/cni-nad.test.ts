import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNad, NadError, parseNad } from '../../src/cni/nad';

const conf = {
  cniVersion: '1.0.0',
  name: 'blue',
  type: 'bridge',
  bridge: 'br-blue',
  ipam: { type: 'host-local', subnet: '10.9.0.0/24' },
};
const nad = (config: unknown, meta: Record<string, unknown> = { name: 'blue', namespace: 'ns1' }) => ({
  apiVersion: 'k8s.cni.cncf.io/v1',
  kind: 'NetworkAttachmentDefinition',
  metadata: meta,
  spec: { config: typeof config === 'string' ? config : JSON.stringify(config) },
});
const ref = { namespace: 'ns1', name: 'blue' };

function nadError(fn: () => unknown): NadError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NadError);
    return e as NadError;
  }
  throw new Error('did not throw');
}

describe('NetworkAttachmentDefinitions from files', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-nad-'));
    fs.mkdirSync(path.join(dir, 'ns1'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const put = (name: string, text: string) => fs.writeFileSync(path.join(dir, 'ns1', name), text);

  it('reads a NAD object as JSON and as YAML, and a bare config', () => {
    put('blue.json', JSON.stringify(nad(conf)));
    const l = loadNad(dir, ref);
    expect(l.name).toBe('blue');
    expect(l.plugins).toEqual([{ type: 'bridge', bridge: 'br-blue', ipam: conf.ipam }]);
    expect(l.file).toBe(path.join(dir, 'ns1', 'blue.json'));
    fs.rmSync(path.join(dir, 'ns1', 'blue.json'));
    put(
      'blue.yaml',
      [
        'apiVersion: k8s.cni.cncf.io/v1',
        'kind: NetworkAttachmentDefinition',
        'metadata: {name: blue, namespace: ns1}',
        'spec:',
        `  config: '${JSON.stringify({ cniVersion: '0.4.0', plugins: [{ type: 'bridge' }, { type: 'tuning' }] })}'`,
      ].join('\n'),
    );
    const y = loadNad(dir, ref);
    expect(y.name).toBe('blue'); // no name in the config: the NAD's, as Multus does
    expect(y.cniVersion).toBe('0.4.0');
    expect(y.plugins.map((p) => p.type)).toEqual(['bridge', 'tuning']);
    fs.rmSync(path.join(dir, 'ns1', 'blue.yaml'));
    put('blue.yml', JSON.stringify(conf));
    expect(loadNad(dir, ref).plugins[0]!.type).toBe('bridge');
  });

  it('a missing NAD is a typed error saying where it was looked for', () => {
    const e = nadError(() => loadNad(dir, { namespace: 'ns1', name: 'red' }));
    expect(e.missing).toBe(true);
    expect(e.message).toBe(
      `network-attachment-definition ns1/red (${path.join(dir, 'ns1', 'red{.json,.yaml,.yml}')}): not found`,
    );
    expect(nadError(() => loadNad(dir, { namespace: 'other', name: 'blue' })).missing).toBe(true);
  });

  it('refuses two files for one NAD and references that are no names', () => {
    put('blue.json', JSON.stringify(conf));
    put('blue.yaml', JSON.stringify(conf));
    expect(nadError(() => loadNad(dir, ref)).message).toMatch(/is defined by more than one file$/);
    expect(nadError(() => loadNad(dir, { namespace: '..', name: 'x' })).message).toMatch(/is not a namespace\/name/);
    expect(nadError(() => loadNad(dir, { namespace: 'ns1', name: '../x' })).message).toMatch(/is not a namespace/);
  });

  it('names what is wrong with a file', () => {
    const f = '/x/ns1/blue.json';
    const bad = (doc: unknown, file = f) =>
      nadError(() => parseNad(ref, file, typeof doc === 'string' ? doc : JSON.stringify(doc))).message;
    expect(bad('{')).toMatch(/^network-attachment-definition ns1\/blue \(\/x\/ns1\/blue.json\): is not JSON: /);
    expect(bad('a: [', '/x/ns1/blue.yaml')).toMatch(/: is not YAML: /);
    expect(bad([1])).toMatch(/: does not hold an object$/);
    expect(bad({ ...nad(conf), kind: 'Pod' })).toMatch(/: kind "Pod" is not NetworkAttachmentDefinition$/);
    expect(bad({ ...nad(conf), apiVersion: 'v1' })).toMatch(/: apiVersion "v1" is not k8s.cni.cncf.io\/v1$/);
    expect(bad(nad(conf, { name: 'red' }))).toMatch(/: metadata.name "red" is not "blue"$/);
    expect(bad(nad(conf, { namespace: 'ns2' }))).toMatch(/: metadata.namespace "ns2" is not "ns1"$/);
    expect(bad({ ...nad(conf), spec: {} })).toMatch(/: spec.config must be the CNI config as a JSON string$/);
    expect(bad({ ...nad(conf), spec: { config: conf } })).toMatch(
      /: spec.config must be the CNI config as a JSON string$/,
    );
    expect(bad(nad('{'))).toMatch(/: spec.config is not JSON: /);
    expect(bad(nad('[]'))).toMatch(/: spec.config is not a JSON object$/);
    expect(bad({ ...conf, cniVersion: '9.9.9' })).toMatch(/"cniVersion" "9.9.9" is not one of/);
    expect(bad({ cniVersion: '1.0.0' })).toMatch(/plugin.type undefined is not a plugin name/);
  });

  it('refuses a file over 1 MiB without parsing it', () => {
    put('blue.json', ' '.repeat((1 << 20) + 1));
    expect(nadError(() => loadNad(dir, ref)).message).toMatch(/is larger than 1048576 bytes$/);
  });
});
