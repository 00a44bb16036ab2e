// Privileged tests need root, /dev/net/tun and network namespaces. Outside CI they
// skip with a printed reason; with CI=true a skip is a failure. The one skip CI allows is
// describeJudgedBy's: ../shared is an external judge, not part of tapwire.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'vitest';

function whyNotPrivileged(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!fs.existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return '"ip netns" is not usable (iproute2 missing?)';
  }
  return undefined;
}

export const privilegedSkipReason = whyNotPrivileged();
export const inCI = process.env.CI === 'true';

/** describe() for tests that need root; see the file comment for when it skips. */
export function describePrivileged(name: string, fn: () => void): void {
  const reason = privilegedSkipReason;
  if (reason === undefined) {
    describe(name, fn);
  } else if (inCI) {
    describe(name, () => {
      it('runs in CI', () => {
        throw new Error(`privileged test "${name}" would skip in CI: ${reason}`);
      });
    });
  } else {
    console.warn(`[skip] ${name}: ${reason}`);
    describe.skip(name, fn);
  }
}

/** ../shared, the external judge: TAPWIRE_SHARED, else the checkout's sibling directory. */
export const SHARED_DIR = process.env.TAPWIRE_SHARED || path.resolve(__dirname, '../../..', 'shared');

/**
 * describePrivileged for a test whose verdict comes from `judge` (a path inside ../shared).
 * Without that file the test skips with the reason printed, in CI too: this is the only
 * skip CI permits, because ../shared is not part of tapwire and a clone alone has none.
 */
export function describeJudgedBy(name: string, judge: string, fn: (judgePath: string) => void): void {
  const judgePath = path.join(SHARED_DIR, judge);
  if (fs.existsSync(judgePath)) {
    describePrivileged(name, () => fn(judgePath));
    return;
  }
  console.warn(
    `[skip] ${name}: its external judge ${judgePath} is absent (../shared is not part of tapwire; ` +
      'set TAPWIRE_SHARED to run it)' +
      (inCI ? '; CI allows this one skip' : ''),
  );
  describe.skip(name, () => fn(judgePath));
}

/** Fails (in CI) or skips with a reason when a tool is missing. */
export function requireTools(...tools: string[]): string | undefined {
  const missing = tools.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  return missing.length ? `missing tools: ${missing.join(', ')}` : undefined;
}
