// The README's main job end to end: dist/src/demo/main.js starts the real tapmanager and
// tapwire-cri, runs a sandbox through the CRI socket with the real bridge, host-local and
// portmap plugins, boots tapwire's guest (src/guest) through vmwrapper (unprivileged) on a real QEMU,
// and removes everything. The guest must lease the CNI address and ping the gateway, and
// nothing the demo made may survive it. TAPWIRE_SHARED points at an empty directory: the
// demo must not lean on ../shared (the external judge), which a clone alone does not have.
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { describePrivileged, requireTools } from '../helpers/privileged';

const DEMO = path.resolve(__dirname, '../../dist/src/demo/main.js');
const netnsList = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n');

describePrivileged('demo (CRI -> CNI -> tapmanager -> vmwrapper -> QEMU)', () => {
  it('the guest leases the pod IP and pings its gateway; nothing is left', async () => {
    const missing = requireTools('nsenter', '/usr/bin/qemu-system-x86_64');
    if (missing) throw new Error(missing);
    if (!fs.existsSync(DEMO)) throw new Error(`${DEMO} is not built (npm run build)`);
    const noShared = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-noshared-'));
    const opts = { timeout: 240_000, maxBuffer: 8 << 20, env: { ...process.env, TAPWIRE_SHARED: noShared } };
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = execFile(process.execPath, [DEMO], opts, (err, stdout, se) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: `${stdout}\n${se}` }),
      );
      void child;
    }).finally(() => fs.rmSync(noShared, { recursive: true, force: true }));
    expect(out, out).toContain('DEMO OK');
    expect(code).toBe(0);
    expect(out).toMatch(/tapwire-guest lease nic=eth0 family=4 ip=10\.250\.0\.2 mask=24 router=10\.250\.0\.1 /);
    expect(out).toMatch(/ hostname=demo-vm /);
    expect(out).toMatch(/tapwire-guest ping target=10\.250\.0\.1 sent=2 recv=2 ok=1 /);
    expect(out).toMatch(/tapwire-guest done status=ok /);
    expect(out).toContain('CRI sandboxes: 0   tapmanager sandboxes: 0');
    expect(out).toMatch(/the process was \/usr\/bin\/qemu-system-x86_64 \(pid \d+, the pid vmwrapper started as\)/);
    const tag = /netns (twdemo-[0-9a-z]+)-node/.exec(out)?.[1];
    expect(tag).toBeDefined();
    expect(netnsList().filter((n) => n.startsWith(tag!))).toEqual([]);
    expect(fs.readdirSync('/run').filter((n) => n.startsWith(tag!))).toEqual([]);
  }, 300_000);
});
