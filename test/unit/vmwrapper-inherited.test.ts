// Which inherited fds vmwrapper keeps across execve: the shim's exact list, or the guess
// from /proc/self/fd (everything but Node's own epoll/eventfd/io_uring and self-pipes).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { guessInherited, parseInherited, stillOpen } from '../../src/vmwrapper/inherited';
import { requireBuilt, SHIM } from '../fixtures/vmwrapper/run-wrapper';

describe('inherited fds', () => {
  it('are checked again before execve: one closed since the guess is dropped', () => {
    const a = fs.openSync('/dev/null', 'r');
    const b = fs.openSync('/dev/null', 'r');
    fs.closeSync(a); // a transient fd of Node's own, listed while open
    try {
      expect(stillOpen([a, b])).toEqual([b]);
    } finally {
      fs.closeSync(b);
    }
  });

  it('guesses: keeps files, sockets and single pipe ends; drops Node internals', () => {
    const links = new Map<number, string>([
      [0, '/dev/null'],
      [1, 'pipe:[1]'],
      [2, 'pipe:[2]'],
      [3, '/var/run/libvirt/qemu/x.pid'],
      [4, 'anon_inode:[eventpoll]'],
      [5, 'pipe:[9]'],
      [6, 'pipe:[9]'],
      [7, 'anon_inode:[eventfd]'],
      [8, 'anon_inode:[io_uring]'],
      [27, 'socket:[4711]'],
      [28, 'pipe:[12]'],
      [29, '/proc/42/fd'],
    ]);
    expect(guessInherited(links)).toEqual([3, 27, 28]);
  });

  it('parses the shim list, dropping stdio, junk and closed fds', () => {
    const fd = fs.openSync('/dev/null', 'r');
    try {
      expect(parseInherited(`1,${fd},x,99999,`)).toEqual([fd]);
      expect(parseInherited('')).toEqual([]);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('the shim lists exactly the fds it inherited without close-on-exec', () => {
    requireBuilt();
    // node as the "emulator's" stand-in: TAPWIRE_VMWRAPPER_JS points the shim at a printer
    const printer = `${fs.mkdtempSync('/tmp/twt-vmwi-')}/print.js`;
    fs.writeFileSync(printer, 'process.stdout.write(process.env.TAPWIRE_INHERITED_FDS ?? "unset")');
    try {
      const r = spawnSync(SHIM, [], {
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'ignore', 'pipe'],
        env: { PATH: '/usr/bin:/bin', TAPWIRE_NODE: process.execPath, TAPWIRE_VMWRAPPER_JS: printer },
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      // 3 and 5 were passed, 4 was not; fds the test runner itself hands to children may add to them
      const fds = r.stdout.split(',').map(Number);
      expect(fds).toEqual(expect.arrayContaining([3, 5]));
      expect(fds).not.toContain(4);
      expect(fds.every((fd) => fd > 2)).toBe(true);
    } finally {
      fs.rmSync(printer.replace(/\/print\.js$/, ''), { recursive: true, force: true });
    }
  });
});
