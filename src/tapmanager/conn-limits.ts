// Bounds on the connections tapmanager holds, and a log that a flood cannot flood.
// Connections are counted per peer uid (SO_PEERCRED): each non-root uid may hold
// `perUid` and all of them together `total`; root has its own `root` allowance, outside
// the total, so no number of other peers' connections keeps root's requests out.

export interface ConnLimitOptions {
  /** connections one non-root uid may hold on both sockets together */
  perUid: number;
  /** connections all non-root uids together may hold */
  total: number;
  /** connections root may hold (its own allowance, not counted in total) */
  root: number;
}

export const DEFAULT_CONN_LIMITS: ConnLimitOptions = { perUid: 16, total: 128, root: 64 };

export class ConnLimits {
  private readonly byUid = new Map<number, number>();
  private nonRoot = 0;

  constructor(readonly o: ConnLimitOptions) {}

  /** Takes a slot for uid: undefined when admitted, else why not (release it on close). */
  admit(uid: number): string | undefined {
    const mine = this.byUid.get(uid) ?? 0;
    if (uid === 0) {
      if (mine >= this.o.root) return `root holds ${mine} connections, the most it may (--max-root-conns)`;
    } else {
      if (mine >= this.o.perUid)
        return `uid ${uid} holds ${mine} connections, the most one uid may (--max-conns-per-uid)`;
      if (this.nonRoot >= this.o.total)
        return `${this.nonRoot} connections are open, the most non-root peers may hold together (--max-conns)`;
      this.nonRoot++;
    }
    this.byUid.set(uid, mine + 1);
    return undefined;
  }

  release(uid: number): void {
    const mine = this.byUid.get(uid) ?? 0;
    if (mine <= 1) this.byUid.delete(uid);
    else this.byUid.set(uid, mine - 1);
    if (uid !== 0 && mine > 0) this.nonRoot--;
  }

  /** Connections held: per uid, and the non-root total. */
  counts(): { total: number; byUid: Record<number, number> } {
    return { total: this.nonRoot, byUid: Object.fromEntries(this.byUid) };
  }
}
