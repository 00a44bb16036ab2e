import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostNetnsOf, isNetns, liveNetnsKey, netnsKey, probeNetns, sameNetns } from '../../src/net/netns';

describe('netns: one check', () => {
  it('a regular file and a missing path are no namespace', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-netns-'));
    try {
      const f = path.join(dir, 'f');
      fs.writeFileSync(f, '');
      expect(probeNetns(f)).toBe('not-netns');
      expect(probeNetns(path.join(dir, 'missing'))).toBe('ENOENT');
      expect(isNetns(f)).toBe(false);
      expect(liveNetnsKey(f)).toBeUndefined();
      expect(netnsKey(f)).toMatch(/^\d+:\d+$/);
      expect(hostNetnsOf(f)).toBeUndefined();
      expect(sameNetns(f, path.join(dir, 'missing'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("this process's own namespace is live and refused by any path to it", () => {
    const own = `/proc/${process.pid}/ns/net`;
    expect(isNetns(own)).toBe(true);
    expect(liveNetnsKey(own)).toBe(netnsKey('/proc/self/ns/net'));
    expect(sameNetns(own, '/proc/self/ns/net')).toBe(true);
    expect(hostNetnsOf(own)).toBeDefined();
  });
});
