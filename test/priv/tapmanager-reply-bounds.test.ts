// Replies that would not fit one frame (issue 14, item 12), through the real daemon: a
// sandbox whose status carries 10,000 warnings (one per CNI route the kernel does not
// have) reports a status that fits, with the long lists cut and counted; a daemon with
// more sandboxes than one list frame holds lists them all to the client and to tapctl,
// page by page, and answers an old-style whole-list request with E2BIG, not a crash.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { MAX_FRAME } from '../../src/tapmanager/protocol';
import type { BoundedStatus } from '../../src/tapmanager/reply-bounds';
import { killDaemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { rawRequest } from '../helpers/peer';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

const TAPCTL = path.resolve(__dirname, '../../dist/src/tapmanager/tapctl.js');

describePrivileged('tapmanager: replies bigger than a frame', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-bounds-'));
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a status with 10,000 warnings fits: long lists cut, what was left out counted', async () => {
    const p = makePod();
    const d = await startDaemon(dir);
    const routes = Array.from({ length: 10_000 }, (_, i) => ({ dst: `172.16.${i >> 8}.${i & 255}/32` }));
    await d.client.setup({ sandboxId: 'sb-warn', netnsPath: p.pod.path, cniResult: { ...p.cniResult, routes } });
    const st = (await d.client.status('sb-warn')) as BoundedStatus;
    const nic = st.nics[0]!;
    expect(nic.warnings.length).toBeLessThanOrEqual(100);
    expect(nic.warnings.length + nic.omitted!.warnings!).toBeGreaterThanOrEqual(10_000);
    expect(nic.warnings).toContain(
      'cniResult.routes[0] 172.16.0.0/32 is not among the kernel routes of "eth0"; the guest gets the kernel\'s',
    );
    expect(Buffer.byteLength(JSON.stringify(st))).toBeLessThan(MAX_FRAME);
    const text = execFileSync(process.execPath, [TAPCTL, '--socket', d.controlSocket, 'describe', 'sb-warn'], {
      encoding: 'utf8',
    });
    expect(text).toContain(`more not shown)`);
    expect(await d.client.teardown('sb-warn')).toEqual({ errors: [] });
    await stopDaemon(d);
  });

  it('300 sandboxes with 4 KB netns paths (1.2 MB of list) list whole, page by page', async () => {
    // one real sandbox; its record cloned 300 times onto a second namespace, named by a
    // path of ~4000 bytes ("/./" repeated), and loaded by a restarted daemon
    const p = makePod();
    const other = createNetns('clones');
    const d = await startDaemon(dir);
    await d.client.setup({ sandboxId: 'sb-real', netnsPath: p.pod.path, cniResult: p.cniResult });
    await killDaemon(d);
    const recDir = path.join(d.stateDir, 'sandboxes');
    const rec = JSON.parse(fs.readFileSync(path.join(recDir, 'sb-real.json'), 'utf8')) as Record<string, unknown> & {
      request: Record<string, unknown>;
    };
    const longPath = `/run/netns/${'./'.repeat(1980)}${other.name}`;
    expect(longPath.length).toBeLessThan(4096);
    const ids: string[] = ['sb-real'];
    for (let i = 0; i < 300; i++) {
      const sandboxId = `sb-clone-${String(i).padStart(3, '0')}`;
      ids.push(sandboxId);
      // without the namespace cookie of sb-real's netns (it would mark them as another
      // namespace's, to be dropped at start): as records written before it was kept
      const clone = {
        ...rec,
        netnsCookie: undefined,
        sandboxId,
        netnsPath: longPath,
        request: { ...rec.request, sandboxId, netnsPath: longPath },
      };
      fs.writeFileSync(path.join(recDir, `${sandboxId}.json`), JSON.stringify(clone), { mode: 0o600 });
    }
    const r = await startDaemon(dir);
    const all = await r.client.list();
    expect(all.map((s) => s.sandboxId).sort()).toEqual(ids.sort());
    expect(Buffer.byteLength(JSON.stringify(all))).toBeGreaterThan(MAX_FRAME);

    // one page at a time, as the client asks: in id order, each under a frame
    const page = rawRequest(r.controlSocket, { v: 1, id: 1, op: 'list', limit: 1000 }) as {
      result: { sandboxes: { sandboxId: string }[]; next: string };
    };
    expect(page.result.sandboxes.length).toBeLessThan(301);
    expect(page.result.next).toBe(page.result.sandboxes.at(-1)!.sandboxId);
    // the whole list in one reply cannot be: a short error saying how to page
    expect(rawRequest(r.controlSocket, { v: 1, id: 2, op: 'list' })).toMatchObject({
      id: 2,
      ok: false,
      error: { code: 'E2BIG', field: 'limit' },
    });
    const text = execFileSync(process.execPath, [TAPCTL, '--socket', r.controlSocket, 'list'], {
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    });
    expect(text.trim().split('\n')).toHaveLength(301);
    expect(r.child.exitCode).toBe(null);
    await stopDaemon(r);
  });
});
