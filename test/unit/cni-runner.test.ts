// ADD/CHECK/DEL through a config list with fake plugins (test/fixtures/cni/fake-plugin.js
// linked under several names in a temp bin dir): prevResult chaining, DEL in reverse, the
// result cache surviving a new runner, plugin errors with the plugin's own code and msg.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Attachment, CniError, CniRunner, NetworkConfigList, parseConfList } from '../../src/cni';

const FAKE = path.resolve(__dirname, '../fixtures/cni/fake-plugin.js');

interface Call {
  type: string;
  env: Record<string, string>;
  conf: Record<string, unknown> & { prevResult?: { ips: { address: string }[] }; runtimeConfig?: unknown };
}

let tmp: string;
let bin: string;
let log: string;
const savedLog = process.env.FAKE_CNI_LOG;

function calls(): Call[] {
  if (!fs.existsSync(log)) return [];
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Call);
}

function list(plugins: object[], cniVersion = '1.0.0'): NetworkConfigList {
  return parseConfList(JSON.stringify({ cniVersion, name: 'fakenet', plugins }), 'test');
}

const att: Attachment = {
  containerId: 'c0ffee',
  netns: '/proc/self/ns/net',
  ifName: 'eth0',
  pod: { podNamespace: 'ns1', podName: 'pod1', infraContainerId: 'c0ffee' },
  capabilities: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
};

function runner(): CniRunner {
  return new CniRunner({ binDirs: ['/nonexistent', bin], cacheDir: path.join(tmp, 'cache') });
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-cnirun-'));
  bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  for (const n of ['fake-a', 'fake-b', 'fake-c']) fs.symlinkSync(FAKE, path.join(bin, n));
  log = path.join(tmp, 'calls.jsonl');
});
beforeEach(() => {
  process.env.FAKE_CNI_LOG = log;
});
afterEach(() => {
  fs.rmSync(log, { force: true });
  fs.rmSync(path.join(tmp, 'cache'), { recursive: true, force: true });
  process.env.FAKE_CNI_LOG = savedLog;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('CniRunner', () => {
  it('chains prevResult through ADD, caches it, CHECKs and DELs in reverse with it', async () => {
    const l = list([
      { type: 'fake-a', ip: '10.9.0.2/24', gateway: '10.9.0.1' },
      { type: 'fake-b', ip: 'fd00::2/64', resultVersion: '0.4.0' },
      { type: 'fake-c', capabilities: { portMappings: true } },
    ]);
    const r = await runner().add(l, att);
    expect(r.cniVersion).toBe('1.0.0');
    expect(r.ips).toEqual([
      { address: '10.9.0.2/24', gateway: '10.9.0.1', interface: 0 },
      { address: 'fd00::2/64', interface: 0 },
    ]);
    const add = calls();
    expect(add.map((c) => c.type)).toEqual(['fake-a', 'fake-b', 'fake-c']);
    expect(add[0]!.conf.prevResult).toBeUndefined();
    expect(add[1]!.conf.prevResult!.ips.map((i) => i.address)).toEqual(['10.9.0.2/24']);
    // fake-b answered 0.4.0; fake-c still gets a 1.0.0 prevResult
    expect(add[2]!.conf.prevResult).toEqual({ ...r, interfaces: r.interfaces });
    expect(add[2]!.conf.runtimeConfig).toEqual({ portMappings: att.capabilities!.portMappings });
    expect(add[0]!.conf.runtimeConfig).toBeUndefined();
    expect(add[0]!.env).toMatchObject({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/proc/self/ns/net',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod1;K8S_POD_INFRA_CONTAINER_ID=c0ffee',
      CNI_PATH: `/nonexistent:${bin}`,
    });
    fs.rmSync(log);

    await runner().check(l, att);
    expect(calls().map((c) => [c.type, c.env.CNI_COMMAND, c.conf.prevResult])).toEqual([
      ['fake-a', 'CHECK', r],
      ['fake-b', 'CHECK', r],
      ['fake-c', 'CHECK', r],
    ]);
    fs.rmSync(log);

    // a fresh runner (a restart) DELs by name only, with the cached config and result
    await runner().del('fakenet', { ...att, netns: '/nonexistent/netns' });
    const del = calls();
    expect(del.map((c) => c.type)).toEqual(['fake-c', 'fake-b', 'fake-a']);
    expect(del.every((c) => c.env.CNI_COMMAND === 'DEL' && c.env.CNI_NETNS === '')).toBe(true);
    expect(del[0]!.conf.prevResult).toEqual(r);
    expect(del[0]!.conf.runtimeConfig).toEqual({ portMappings: att.capabilities!.portMappings });
    expect(fs.readdirSync(path.join(tmp, 'cache'))).toEqual([]);

    // second DEL: no cache left, falls back to the given list, still succeeds
    fs.rmSync(log);
    await runner().del(l, att);
    expect(calls().map((c) => [c.type, c.conf.prevResult])).toEqual([
      ['fake-c', undefined],
      ['fake-b', undefined],
      ['fake-a', undefined],
    ]);
    fs.rmSync(log);
    await runner().del('fakenet', att); // by name with nothing cached: nothing to undo
    expect(calls()).toEqual([]);
  });

  it('surfaces a plugin error with its own code, msg, details and plugin name; stops the chain', async () => {
    const l = list([
      { type: 'fake-a', ip: '10.9.0.2/24' },
      { type: 'fake-b', failOn: 'ADD', errCode: 117, errMsg: 'no more leases', errDetails: 'pool 10.9.0.0/24' },
      { type: 'fake-c' },
    ]);
    const err = (await runner()
      .add(l, att)
      .catch((e: unknown) => e)) as CniError;
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({
      code: 117,
      msg: 'no more leases',
      details: 'pool 10.9.0.0/24',
      plugin: 'fake-b',
      command: 'ADD',
    });
    expect(err.message).toBe('CNI ADD plugin "fake-b" failed (code 117): no more leases; pool 10.9.0.0/24');
    expect(calls().map((c) => c.type)).toEqual(['fake-a', 'fake-b']);
    // the config was cached before ADD, so a DEL by name alone can undo it
    fs.rmSync(log);
    await runner().del('fakenet', att);
    expect(calls().map((c) => c.type)).toEqual(['fake-c', 'fake-b', 'fake-a']);
  });

  it('reports a missing plugin, non-JSON output and a crash without error JSON', async () => {
    await expect(runner().add(list([{ type: 'nosuch' }]), att)).rejects.toMatchObject({
      code: 7,
      plugin: 'nosuch',
      msg: `failed to find plugin "nosuch" in path [/nonexistent ${bin}]`,
    });
    await expect(runner().add(list([{ type: 'fake-a', garbage: true }]), att)).rejects.toMatchObject({
      code: 6,
      msg: 'output is not JSON: this is not json',
    });
    await expect(runner().add(list([{ type: 'fake-a', garbage: true, garbageExit: 3 }]), att)).rejects.toMatchObject({
      code: 5,
      msg: 'plugin exited with status 3 without an error JSON',
      details: 'this is not json',
    });
  });

  it('skips CHECK for 0.3.x and disableCheck', async () => {
    await runner().check(list([{ type: 'fake-a' }], '0.3.1'), att);
    const l = parseConfList(
      JSON.stringify({ cniVersion: '1.0.0', name: 'n', disableCheck: true, plugins: [{ type: 'fake-a' }] }),
    );
    await runner().check(l, att);
    expect(calls()).toEqual([]);
  });
});
