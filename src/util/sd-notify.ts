// The systemd notify protocol (sd_notify(3)): newline-separated KEY=VALUE datagrams to
// the Unix datagram socket in $NOTIFY_SOCKET (a path, or '@name' for an abstract one).
// Node has no Unix datagram socket, so the send is one native syscall (native/sock.cc);
// the maintained npm bindings link libsystemd, which this needs no more of than sendto.
// Without $NOTIFY_SOCKET (not started by systemd, or in a container) every call is a no-op.
import { unixDatagramSend } from '../native';

export interface NotifyEnv {
  NOTIFY_SOCKET?: string | undefined;
  WATCHDOG_USEC?: string | undefined;
  WATCHDOG_PID?: string | undefined;
}

export class SdNotifier {
  private readonly socket: string | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private lastStatus: string | undefined;
  /** the first send failure (logged once by the caller); later ones are only counted */
  failures = 0;

  constructor(
    env: NotifyEnv = process.env,
    private readonly onError: (e: Error) => void = () => undefined,
    private readonly pid = process.pid,
  ) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    this.watchdogUsec = watchdogInterval(env, pid);
  }

  /** WATCHDOG_USEC when it is meant for this process (WATCHDOG_PID unset or ours), else undefined. */
  readonly watchdogUsec: number | undefined;

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** Sends the fields as one datagram; a failed send never throws (systemd may be gone). */
  send(fields: Record<string, string | number>): void {
    if (!this.socket) return;
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
      .join('\n');
    try {
      unixDatagramSend(this.socket, Buffer.from(text));
    } catch (e) {
      if (this.failures++ === 0) this.onError(e as Error);
    }
  }

  /** STATUS=text, only when it changed (it is shown by `systemctl status`). */
  status(text: string): void {
    if (text === this.lastStatus) return;
    this.lastStatus = text;
    this.send({ STATUS: text });
  }

  /** READY=1 with MAINPID and a status line; starts the watchdog pings when systemd asked for them. */
  ready(status: string): void {
    this.lastStatus = status;
    this.send({ READY: 1, MAINPID: this.pid, STATUS: status });
    this.startWatchdog();
  }

  stopping(status = 'stopping'): void {
    this.stopWatchdog();
    this.lastStatus = status;
    this.send({ STOPPING: 1, STATUS: status });
  }

  /**
   * WATCHDOG=1 at half the interval systemd set (WatchdogSec=), from a timer on the event
   * loop: a loop that is stuck stops the pings, and systemd restarts the daemon.
   */
  private startWatchdog(): void {
    if (!this.socket || this.watchdogUsec === undefined || this.watchdogTimer) return;
    const every = Math.max(1, Math.floor(this.watchdogUsec / 2000));
    this.send({ WATCHDOG: 1 });
    this.watchdogTimer = setInterval(() => this.send({ WATCHDOG: 1 }), every);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }
}

function watchdogInterval(env: NotifyEnv, pid: number): number | undefined {
  if (!env.WATCHDOG_USEC) return undefined;
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec;
}
