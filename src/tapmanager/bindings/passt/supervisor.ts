// The passt processes of this daemon's passt NICs, one per NIC: started in the pod netns
// on one end of a connected AF_UNIX stream pair (the emulator gets the other end over
// the fd socket), watched, restarted when they die, stopped at teardown.
//
// While the daemon runs it keeps a copy of passt's end of the pair. A passt that dies
// while the emulator's end is still open is restarted on that same end: the emulator's
// socket stays connected and the guest sees a pause, not a new link (its next DHCP
// renewal is answered by the new passt). When the emulator's end is closed (the emulator
// went, or was never given it) the new passt gets a fresh pair, whose emulator end waits
// for the next fetch. Each fetch after the first gets a fresh pair (the emulator
// restarted): the earlier passt is stopped.
//
// After a daemon restart the record's pid and start time name the passt that was running
// (passt runs in its own session, so it outlives the daemon, and the emulator keeps
// using it): it is adopted and watched (polled), or, when it is gone, replaced on a fresh
// pair. An adopted passt's end is not the daemon's to keep (passt's fds cannot be taken
// back), so when it dies the guest's NIC stays down until the emulator fetches again.
// A recorded process that still runs but no longer looks like passt is stopped instead.
// Each passt is recorded as soon as it is forked: the binding tells the sandbox layer its
// part of the record changed (NicSupervision.recordChanged) and waits for the save before
// it waits for passt to serve, at setup (a rollback after a daemon crash finds it), on a
// fetch, at recovery and on a restart alike. What remains is the window between the fork
// and the save's landing: a daemon killed then leaves the record naming the passt before;
// when the new one serves the emulator's kept end (a restart on the same connection) it
// outlives the daemon unrecorded, and the next daemon cannot stop it (its own passt for
// the NIC fails to bind the listed ports and is retried). A passt on a fresh pair goes
// with the daemon, which held both its ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { closeFd, peerClosed, unixStreamPair, withNetns } from '../../../native';
import { TapError } from '../../errors';
import type { NicRecord } from '../../record';
import type { NicSupervision } from '../types';
import { childArgv, PASST_FD } from './args';
import { isRecordedPasst, isRecordedProcess, passtServing, procStartTime, signal } from './proc';

interface Entry {
  nic: NicRecord;
  sup: NicSupervision;
  /** the passt this daemon started (exit events), or undefined for an adopted one */
  child?: ChildProcess;
  /** polls an adopted passt */
  watch?: NodeJS.Timeout;
  /** the daemon's copy of passt's end of the pair (not for an adopted passt) */
  passtEnd?: number;
  /** the emulator's end, until a fetch takes it */
  pendingEnd?: number;
  stopped: boolean;
  startedAt: number;
  quickExits: number;
  restarts: number;
  lastExit?: string;
  timer?: NodeJS.Timeout;
  /** restarts, fetches and the stop run one at a time (a restart may be under way when a fetch comes) */
  lock: Promise<unknown>;
}

/** Runs fn after every earlier exclusive operation on e. */
function exclusive<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
  const next = e.lock.then(fn, fn);
  e.lock = next.catch(() => undefined);
  return next;
}

/** By NIC record: the registry's record objects live as long as the sandbox does. */
const entries = new Map<NicRecord, Entry>();

function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeFd(fd);
  } catch {
    /* already closed */
  }
}

/** Forks setpriv -> passt in the netns at nsPath, with `end` as its fd 3; resolves once it runs. */
async function spawnIn(nsPath: string, nic: NicRecord, end: number): Promise<ChildProcess> {
  const { file, args } = childArgv(nic);
  // forked from this thread while it is in the pod netns: the child starts there. Its own
  // session, so that it outlives a daemon killed with its process group.
  const child = withNetns(nsPath, () =>
    spawn(file, args, {
      stdio: ['ignore', 'ignore', 'ignore', end],
      detached: true,
      env: process.env.PATH ? { PATH: process.env.PATH } : {},
    }),
  );
  child.on('error', () => undefined); // signals go by pid (proc.ts), a failed spawn is handled below
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  child.unref();
  return child;
}

function recordProcess(e: Entry, pid: number, end: number | undefined): void {
  const p = e.nic.passt!;
  p.pid = pid;
  const st = procStartTime(pid);
  if (st !== undefined) p.startTime = st;
  else delete p.startTime;
  if (end !== undefined) p.socket = fstatSync(end).ino;
}

/** How long a passt may take to start serving before the start counts as failed. */
const READY_MS = 10_000;

/** Resolves once child is passt serving as uid; rejects when it exits first or takes over READY_MS. */
async function serving(child: ChildProcess, uid: number): Promise<void> {
  const end = Date.now() + READY_MS;
  for (let wait = 1; ; wait = Math.min(wait * 2, 4)) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `passt exited at start (${child.exitCode !== null ? `exit code ${child.exitCode}` : `signal ${child.signalCode}`})`,
      );
    if (passtServing(child.pid!, uid)) return;
    if (Date.now() > end) throw new Error(`passt did not start serving in ${READY_MS} ms`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Starts passt for e on `end` (its end of a pair), in the netns at nsPath; resolves once
 * it serves. Its pid, start time and socket go into the record as soon as it is forked,
 * and the record is saved before passt is waited for. A failed save stops it (the start
 * fails), except on a restart of a NIC in use (`keepUnsaved`): logged, and passt serves
 * unrecorded rather than the guest losing its network.
 */
async function run(e: Entry, nsPath: string, end: number, keepUnsaved = false): Promise<void> {
  const child = await spawnIn(nsPath, e.nic, end);
  try {
    recordProcess(e, child.pid!, end);
    await e.sup.recordChanged().catch((err: unknown) => {
      if (!keepUnsaved) throw err;
      e.sup.log.error('record not saved after a passt restart', {
        sandboxId: e.sup.sandboxId,
        error: (err as Error).message,
      });
    });
    await serving(child, e.nic.passt!.uid);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      if (signal(child.pid!, 'SIGKILL')) await gone;
    }
    throw err;
  }
  e.child = child;
  e.startedAt = Date.now();
  child.once('exit', (code, sig) => onExit(e, child, code, sig));
  // it may have gone between the check and the listener
  if (child.exitCode !== null || child.signalCode !== null) onExit(e, child, child.exitCode, child.signalCode);
}

/** A fresh pair: passt's end kept, the emulator's pending (any earlier ones closed). */
function freshPair(e: Entry): number {
  closeQuietly(e.passtEnd);
  closeQuietly(e.pendingEnd);
  const [mine, theirs] = unixStreamPair();
  e.passtEnd = mine;
  e.pendingEnd = theirs;
  return mine;
}

function onExit(e: Entry, child: ChildProcess, code: number | null, sig: NodeJS.Signals | null): void {
  if (e.stopped || e.child !== child) return;
  e.child = undefined;
  died(e, code !== null ? `exit code ${code}` : `signal ${sig}`);
}

/** e's passt is gone: log it, restart it (on the same connection when the emulator still holds its end). */
function died(e: Entry, how: string): void {
  const p = e.nic.passt!;
  e.lastExit = `${how} at ${new Date().toISOString()}`;
  const quick = Date.now() - e.startedAt < 2000;
  e.quickExits = quick ? e.quickExits + 1 : 0;
  // a passt that keeps dying at once (its port taken, the interface gone) is retried slower
  const delay = e.quickExits === 0 ? 0 : Math.min(30_000, 250 * 2 ** (e.quickExits - 1));
  let same = false;
  try {
    same = e.passtEnd !== undefined && !peerClosed(e.passtEnd);
  } catch {
    /* our end is gone: a fresh pair */
  }
  e.sup.log.warn('passt exited; restarting it', {
    sandboxId: e.sup.sandboxId,
    nic: e.nic.name,
    pid: p.pid,
    how,
    connection: same ? 'kept (the emulator still holds its end)' : 'fresh pair (for the next fetch)',
    ...(delay ? { delayMs: delay } : {}),
  });
  clearTimeout(e.timer); // one retry at a time
  e.timer = setTimeout(() => void restart(e, same), delay);
  e.timer.unref();
}

async function restart(e: Entry, same: boolean): Promise<void> {
  e.timer = undefined;
  return exclusive(e, () => restartNow(e, same));
}

async function restartNow(e: Entry, same: boolean): Promise<void> {
  if (e.stopped || e.child) return;
  const ns = e.sup.pin();
  if (!ns) {
    e.sup.log.error('passt not restarted: the sandbox netns is gone', { sandboxId: e.sup.sandboxId, nic: e.nic.name });
    return;
  }
  // a failed attempt counts as a quick exit too (died() backs off), never a busy loop
  e.startedAt = Date.now();
  try {
    const end = same && e.passtEnd !== undefined ? e.passtEnd : freshPair(e);
    await run(e, ns.path, end, true);
    e.restarts++;
    if (e.stopped) {
      await kill(e);
      return;
    }
    e.sup.log.info('passt restarted', { sandboxId: e.sup.sandboxId, nic: e.nic.name, pid: e.nic.passt!.pid });
  } catch (err) {
    e.sup.log.error('passt restart failed; retrying', {
      sandboxId: e.sup.sandboxId,
      nic: e.nic.name,
      error: (err as Error).message,
    });
    if (!e.stopped) died(e, `restart failed: ${(err as Error).message}`);
  } finally {
    ns.close();
  }
}

function newEntry(nic: NicRecord, sup: NicSupervision): Entry {
  return { nic, sup, stopped: false, startedAt: Date.now(), quickExits: 0, restarts: 0, lock: Promise.resolve() };
}

/** Setup: passt for nic on a fresh pair, in the netns at nsPath (the emulator's end pending). */
export async function startPasst(nic: NicRecord, sup: NicSupervision, nsPath: string): Promise<void> {
  const key = nic;
  if (entries.has(key)) throw new TapError('EEXIST', `passt for NIC ${nic.name} of ${sup.sandboxId} is running`);
  const e = newEntry(nic, sup);
  entries.set(key, e);
  try {
    // recorded before it serves: a daemon that dies now leaves a record its rollback stops it by
    await run(e, nsPath, freshPair(e));
  } catch (err) {
    await stopPasst(nic);
    throw new TapError('EIO', `cannot start passt for NIC ${nic.name}: ${(err as Error).message}`);
  }
}

/**
 * After a daemon restart: the recorded passt adopted when it still runs, else a new one on
 * a fresh pair. Returns the drift to report (empty when adopted).
 */
export async function adoptPasst(nic: NicRecord, sup: NicSupervision, nsPath: string): Promise<string[]> {
  const key = nic;
  if (entries.has(key)) return [];
  const p = nic.passt!;
  const e = newEntry(nic, sup);
  entries.set(key, e);
  if (isRecordedPasst(p.pid, p.startTime)) {
    e.startedAt = 0;
    e.watch = setInterval(() => {
      if (e.stopped || isRecordedProcess(p.pid, p.startTime)) return;
      clearInterval(e.watch);
      e.watch = undefined;
      died(e, 'gone (adopted: the emulator must fetch again)');
    }, 1000);
    e.watch.unref();
    sup.log.info('passt adopted', { sandboxId: sup.sandboxId, nic: nic.name, pid: p.pid });
    return [];
  }
  const was = p.pid !== undefined ? ` (pid ${p.pid})` : '';
  try {
    // the recorded process may still run without looking like passt (its argv rewritten):
    // not adopted, but stopped, or the new passt could not bind the listed ports
    await stopRecorded(p);
    await run(e, nsPath, freshPair(e));
  } catch (err) {
    // the entry stays, so that the backoff retries and a fetch finds it; its ends close
    // when it goes (stopPasst, releasePasst)
    const msg = (err as Error).message;
    died(e, `start failed: ${msg}`);
    return [`passt${was} was gone and could not be started again (${msg}): retrying`];
  }
  return [`passt${was} was gone: started again (pid ${p.pid}) on a fresh socket pair; the emulator must fetch again`];
}

/**
 * The emulator's end for a fetch: the pending one, or (a fetch after an earlier one: the
 * emulator restarted) a fresh pair with a fresh passt, the earlier one stopped.
 */
export async function takeEmulatorEnd(sandboxId: string, nic: NicRecord, nsPath: string): Promise<number> {
  const e = entries.get(nic);
  if (!e || e.stopped) throw new TapError('EAGAIN', `passt for NIC ${nic.name} of ${sandboxId} is not running`);
  return exclusive(e, async () => {
    if (e.stopped) throw new TapError('EAGAIN', `passt for NIC ${nic.name} of ${sandboxId} is stopping`);
    if (e.pendingEnd === undefined || !e.child) {
      clearTimeout(e.timer);
      e.timer = undefined;
      await kill(e);
      e.startedAt = Date.now();
      try {
        await run(e, nsPath, freshPair(e));
      } catch (err) {
        const msg = (err as Error).message;
        // retried with backoff like a death, so that a later fetch finds it running
        if (!e.stopped) died(e, `start failed: ${msg}`);
        throw new TapError('EIO', `cannot start passt for NIC ${nic.name} of ${sandboxId}: ${msg}`);
      }
    }
    const fd = e.pendingEnd!;
    e.pendingEnd = undefined;
    return fd;
  });
}

/**
 * Stops e's passt (TERM, then KILL after 2 s) and waits until it is gone. Never by what
 * its argv says (passt can rewrite it): this daemon's child by its pid, which is its own
 * until Node reaps it; an adopted one by its recorded pid and start time.
 */
async function kill(e: Entry): Promise<void> {
  clearInterval(e.watch);
  e.watch = undefined;
  const p = e.nic.passt!;
  const child = e.child;
  e.child = undefined; // its exit is not a death to recover from
  if (child) await killChild(child);
  else if (isRecordedProcess(p.pid, p.startTime)) await killRecorded(p.pid!, p.startTime!);
}

/** Signals (by pid: process.kill throws a refused signal, ChildProcess.kill would not) and polls. */
async function killUntil(pid: number, gone: () => boolean): Promise<void> {
  if (gone() || !signal(pid, 'SIGTERM')) return;
  // polled every 5 ms: SIGKILL after 2 s, given up after 4 s
  for (let i = 0; i < 800; i++) {
    if (gone()) return;
    if (i === 400) signal(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new TapError('EBUSY', `passt pid ${pid} did not exit`);
}

/** This daemon's child: not reaped (exit code or signal unset) means its pid is still it. */
function killChild(child: ChildProcess): Promise<void> {
  return killUntil(child.pid!, () => child.exitCode !== null || child.signalCode !== null);
}

/** A recorded passt (adopted, or after a restart): its pid is still it while its start time is. */
function killRecorded(pid: number, startTime: string): Promise<void> {
  return killUntil(pid, () => !isRecordedProcess(pid, startTime));
}

/** The passt a record names stopped, when that process (pid and start time) still runs. */
async function stopRecorded(p: { pid?: number; startTime?: string }): Promise<void> {
  if (isRecordedProcess(p.pid, p.startTime)) await killRecorded(p.pid!, p.startTime!);
}

/** Teardown: the NIC's passt stopped (the one supervised, else the recorded one), its ends closed. */
export async function stopPasst(nic: NicRecord): Promise<void> {
  const key = nic;
  const e = entries.get(key);
  const p = nic.passt;
  if (!e) {
    if (p) await stopRecorded(p);
    return;
  }
  e.stopped = true;
  clearTimeout(e.timer);
  await exclusive(e, async () => {
    try {
      await kill(e);
    } finally {
      closeQuietly(e.passtEnd);
      closeQuietly(e.pendingEnd);
      e.passtEnd = e.pendingEnd = undefined;
      entries.delete(key);
    }
  });
}

/** The daemon closes: watching stops and its ends close; the passts that serve an emulator keep running. */
export function releasePasst(sandboxIds: Iterable<string>): void {
  const ids = new Set(sandboxIds);
  for (const [key, e] of entries) {
    if (!ids.has(e.sup.sandboxId)) continue;
    e.stopped = true;
    clearTimeout(e.timer);
    clearInterval(e.watch);
    closeQuietly(e.passtEnd);
    closeQuietly(e.pendingEnd);
    entries.delete(key);
  }
}

/** What describe shows beside the record: running or not, restarts, the last exit, whether an end waits. */
export function passtLive(
  nic: NicRecord,
):
  | { running: boolean; adopted: boolean; restarts: number; lastExit?: string; emulatorEnd: 'pending' | 'handed out' }
  | undefined {
  const e = entries.get(nic);
  if (!e) return undefined;
  const p = nic.passt!;
  return {
    // a passt of this daemon is e.child once it serves; the record names it from the fork
    // on, so the recorded process counts only for an adopted one (one being started, which
    // may still fail, is not running)
    running: e.child
      ? e.child.exitCode === null && e.child.signalCode === null
      : e.watch !== undefined && isRecordedProcess(p.pid, p.startTime),
    adopted: e.child === undefined && e.watch !== undefined,
    restarts: e.restarts,
    ...(e.lastExit ? { lastExit: e.lastExit } : {}),
    emulatorEnd: e.pendingEnd !== undefined ? 'pending' : 'handed out',
  };
}

export { PASST_FD };
