// Fetching the guest's tap fds from tapmanager's fd socket: one blocking connect, one
// `fds` request frame, then recvmsg until one whole reply frame is in (the fds may ride
// on any chunk; all are collected). Synchronous on purpose: vmwrapper does nothing
// else, and it keeps the process free of event-loop work before execve. A daemon that
// turns the connection away as busy (too many connections: EAGAIN on reply id 0) is
// asked again, with a growing pause, until the timeout.
import { closeFd, recvFds, sendFds, unixConnect } from '../native';
import { encodeFrame, FdsResult, FrameDecoder, PROTOCOL_VERSION } from '../tapmanager/protocol';
import { ArgsError, checkNic, expectedFdCount, WrapperNic } from './args';

/** A failure to get the fds; code is an errno name or a daemon error code. */
export class FetchError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** the daemon turned the connection away for now (too many connections): worth another try */
    readonly busy = false,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

export interface Fetched {
  sandboxId: string;
  nics: WrapperNic[];
  /** In the daemon's order: per NIC its tap fds, then its vhost fds when it has vhost. */
  fds: number[];
}

const REQUEST_ID = 1;
/** How long vmwrapper waits on a daemon that accepted but does not answer. */
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
const MAX_FDS_PER_RECV = 253;

function errCode(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'EIO';
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

function closeAll(fds: number[]): void {
  for (const fd of fds) {
    try {
      closeFd(fd);
    } catch {
      /* already closed */
    }
  }
}

/** Reads frames until the first one is whole; returns it with every fd that came with the bytes. */
function readReply(sock: number, timeoutMs: number): { reply: unknown; fds: number[] } {
  const decoder = new FrameDecoder();
  const fds: number[] = [];
  try {
    for (;;) {
      const r = recvFds(sock, 65536, MAX_FDS_PER_RECV);
      fds.push(...r.fds);
      if (r.data.length === 0) {
        throw new FetchError('ECONNRESET', 'daemon closed the connection before a whole reply arrived');
      }
      const frames = decoder.push(r.data);
      if (frames.length > 0) return { reply: frames[0], fds };
    }
  } catch (e) {
    closeAll(fds);
    if (e instanceof FetchError) throw e;
    if (errCode(e) === 'EAGAIN') throw new FetchError('ETIMEDOUT', `no reply from the daemon within ${timeoutMs} ms`);
    const code = errCode(e) === 'EIO' ? 'EPROTO' : errCode(e);
    throw new FetchError(code, `bad reply (${code}): ${errText(e)}`);
  }
}

/** The frame a daemon wrote before closing on us, if any. */
function readRefusal(sock: number, timeoutMs: number): { reply: unknown; fds: number[] } | undefined {
  try {
    return readReply(sock, timeoutMs);
  } catch {
    return undefined;
  }
}

/** Checks the reply's shape and fd count; closes the fds and throws on anything wrong. */
function checkReply(reply: unknown, fds: number[]): Fetched {
  try {
    const r = (typeof reply === 'object' && reply !== null ? reply : {}) as Record<string, unknown>;
    if (r.ok === false) {
      const body = (r.error ?? {}) as { code?: unknown; message?: unknown };
      const code = typeof body.code === 'string' ? body.code : 'EIO';
      const text = typeof body.message === 'string' ? body.message : '-';
      throw new FetchError(code, `daemon refused (${code}): ${text}`, code === 'EAGAIN' && r.id === 0);
    }
    if (r.ok !== true || r.v !== PROTOCOL_VERSION || r.id !== REQUEST_ID) {
      throw new FetchError('EPROTO', `unexpected reply ${JSON.stringify(reply).slice(0, 200)}`);
    }
    const res = (r.result ?? {}) as Partial<FdsResult>;
    if (typeof res.sandboxId !== 'string') throw new FetchError('EPROTO', 'reply has no sandboxId');
    if (!Array.isArray(res.nics) || res.nics.length === 0) throw new FetchError('EPROTO', 'reply lists no NICs');
    const nics = res.nics.map((n, i) => checkNic(n, i));
    const want = expectedFdCount(nics);
    if (fds.length !== want) {
      throw new FetchError('EPROTO', `fd count mismatch: got ${fds.length} fds for ${nics.length} NICs, want ${want}`);
    }
    return { sandboxId: res.sandboxId, nics, fds };
  } catch (e) {
    closeAll(fds);
    if (e instanceof ArgsError) throw new FetchError('EPROTO', `bad reply: ${e.message}`);
    throw e;
  }
}

/** Asks the daemon at socketPath for key's tap fds. Throws FetchError. */
export function fetchFds(socketPath: string, key: string, timeoutMs = DEFAULT_FETCH_TIMEOUT_MS): Fetched {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 500)) {
    try {
      return fetchOnce(socketPath, key, timeoutMs);
    } catch (e) {
      if (!(e instanceof FetchError && e.busy) || Date.now() + pause > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause); // a sleep; nothing else runs here
    }
  }
}

function fetchOnce(socketPath: string, key: string, timeoutMs: number): Fetched {
  let sock: number;
  try {
    sock = unixConnect(socketPath, timeoutMs);
  } catch (e) {
    throw new FetchError(errCode(e), `cannot connect: ${errCode(e)}`);
  }
  try {
    try {
      sendFds(sock, encodeFrame({ v: PROTOCOL_VERSION, id: REQUEST_ID, op: 'fds', key }), []);
    } catch (e) {
      // A daemon that refuses a peer writes why and closes at once: the send then fails,
      // but the refusal is there to read.
      const code = errCode(e);
      const refusal = code === 'EPIPE' || code === 'ECONNRESET' ? readRefusal(sock, timeoutMs) : undefined;
      if (refusal) checkReply(refusal.reply, refusal.fds); // throws the daemon's error
      throw new FetchError(code, `cannot send the request: ${code}`);
    }
    const { reply, fds } = readReply(sock, timeoutMs);
    return checkReply(reply, fds);
  } finally {
    closeAll([sock]);
  }
}
