// One holder at a time for a sandbox's taps (issue 14, item 7), through the real daemon:
// while an emulator stand-in (test/fixtures/fd-holder.js, a separate process) holds the
// fds of a fetch, every other fetch is refused with EBUSY naming the tap and the ways
// out, for multiqueue taps (the kernel would attach 4 more queues) and single-queue ones
// alike, also when four fetch at once. Once the holder exits (QEMU quits: a re-exec of
// vmwrapper), or the runtime revokes the taps, a fetch works again; a revoke detaches
// the old files and leaves the topology as setup built it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { closeFd, tapInfo } from '../../src/native';
import { fetchFds } from '../../src/vmwrapper/fetch';
import { killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { killPeers, runHolder } from '../helpers/peer';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager: one holder at a time for a sandbox taps', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-holder-'));
  });
  afterEach(async () => {
    killPeers();
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each([4, 1])(
    'queues=%i: a second fetch while the first holder lives is EBUSY; after it exits, a fetch works',
    async (queues) => {
      const p = makePod();
      const before = await settledDump(p.pod);
      const d = await startDaemon(dir);
      const res = await d.client.setup({ sandboxId: 'sb-hold', netnsPath: p.pod.path, cniResult: p.cniResult, queues });

      // four emulators start at once: exactly one gets the taps
      const holders = await Promise.all([1, 2, 3, 4].map(() => runHolder(d.fdSocket, res.netKey)));
      const winners = holders.filter((h) => h.result.ok);
      expect(winners.map((h) => h.result)).toEqual([{ ok: true, fds: queues }]);
      for (const h of holders.filter((x) => !x.result.ok)) {
        expect(h.result).toMatchObject({ ok: false, code: 'EBUSY' });
        expect((h.result as { message: string }).message).toBe(
          `daemon refused (EBUSY): sandbox "sb-hold": its taps are still held by the previous fds holder ` +
            `("tap0" has ${queues} queue file(s) attached); they can be fetched again once that holder has closed ` +
            'them (its emulator exited) or the runtime revoked them (op "revoke")',
        );
      }
      if (queues > 1) expect(p.pod.ip('-d', 'link', 'show', 'tap0')).toMatch(new RegExp(`numqueues ${queues}\\b`));
      await Promise.all(holders.filter((h) => !h.result.ok).map((h) => h.release()));
      // the daemon in the same process as a fetch (root, in-process) is refused the same
      expect(() => fetchFds(d.fdSocket, res.netKey)).toThrow(expect.objectContaining({ code: 'EBUSY' }));

      // the holder exits (QEMU quit): vmwrapper's next exec fetches again
      await winners[0]!.release();
      const again = await runHolder(d.fdSocket, res.netKey);
      expect(again.result).toEqual({ ok: true, fds: queues });
      await again.release();

      expect(await d.client.teardown('sb-hold')).toEqual({ errors: [] });
      expect(ipDump(p.pod)).toBe(before);
      await stopDaemon(d);
    },
  );

  it.each([4, 1])(
    'queues=%i: revoke detaches the holder; the next fetch works; teardown restores exactly',
    async (queues) => {
      const p = makePod();
      const before = await settledDump(p.pod);
      const d = await startDaemon(dir);
      const res = await d.client.setup({ sandboxId: 'sb-rev', netnsPath: p.pod.path, cniResult: p.cniResult, queues });
      const links = p.pod
        .ip('-d', '-o', 'link', 'show', 'tap0')
        .replace(/^\d+: /, '')
        .replace(/link\/ether \S+/, '');

      expect(await d.client.revoke('sb-rev')).toEqual({ sandboxId: 'sb-rev', revoked: [] }); // nobody held them
      const old = fetchFds(d.fdSocket, res.netKey);
      try {
        expect(tapInfo(old.fds[0]!).name).toBe('tap0');
        expect(() => fetchFds(d.fdSocket, res.netKey)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
        expect(await d.client.revoke('sb-rev')).toEqual({
          sandboxId: 'sb-rev',
          revoked: [{ tap: 'tap0', attached: queues, disabled: 0 }],
        });
        // the old files reach no device any more
        for (const fd of old.fds) expect(() => tapInfo(fd)).toThrow(/EBADFD/);
        const f = fetchFds(d.fdSocket, res.netKey);
        expect(f.fds).toHaveLength(queues);
        expect(tapInfo(f.fds[0]!)).toMatchObject({ name: 'tap0', multiQueue: queues > 1, persist: true });
        f.fds.forEach((fd) => closeFd(fd));
      } finally {
        old.fds.forEach((fd) => closeFd(fd));
      }
      // the tap is back as setup made it (index and MAC are new). The daemon closes its own
      // copies of the files it sent just after the send, so on a loaded machine they can
      // still be attached for a moment after this process closed its copies: wait for that.
      const show = (): string =>
        p.pod
          .ip('-d', '-o', 'link', 'show', 'tap0')
          .replace(/^\d+: /, '')
          .replace(/link\/ether \S+/, '');
      for (let i = 0; i < 100 && show() !== links; i++) await new Promise((r) => setTimeout(r, 50));
      expect(show()).toBe(links);
      await expect(d.client.revoke('nope')).rejects.toMatchObject({ code: 'ENOENT', field: 'sandboxId' });
      expect(await d.client.teardown('sb-rev')).toEqual({ errors: [] });
      expect(ipDump(p.pod)).toBe(before);
      await stopDaemon(d);
    },
  );
});
