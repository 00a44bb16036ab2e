// tapmanager's metrics on a prom-client registry. Two kinds:
//  - events, counted as they happen through one-line hooks: setup/teardown durations and
//    errors (by the step that failed and the errno), recovery duration and errors (by the
//    recovery step and the errno), fd hand-outs and refusals (by reason);
//  - state, read when scraped (refresh()): sandboxes by state, and each sandbox's DHCP,
//    DHCPv6 and router advertisement counters (from memory) and fence drop counters (the nft counters in its netns), read
//    for all sandboxes in one counters-only call (SandboxManager.counters: one nf_tables
//    dump per namespace on one pool thread, no status() or link dump each), bounded in
//    time: a sandbox not read in time keeps its last values.
// Node-wide series carry only labels from fixed lists. Per-sandbox series (label
// `sandbox`) exist for at most maxSandboxSeries sandboxes (by id order), a few each.
// Counts of sandboxes that are gone stay in the node-wide totals (as last scraped), so a
// teardown does not make a counter go down.
import * as prom from 'prom-client';
import type { DhcpCounters } from '../../dhcp/counters';
import { newCounters } from '../../dhcp/counters';
import type { ListEntry } from '../protocol';
import type { SandboxCounters } from '../sandboxes';
import type { Dhcp6Counters } from '../../dhcp6/counters';
import { DHCP_FAULTS, DHCP_IGNORED, DHCP_RECEIVED, DHCP_REPLIES, dhcpSummary } from './dhcp';
import {
  DHCP6_FAULTS,
  DHCP6_IGNORED,
  DHCP6_RECEIVED,
  DHCP6_REPLIES,
  DHCP6_STATUS,
  dhcp6Summary,
  newCounters6,
  newRaCounters,
  RA_SENT,
  RS_OUTCOMES,
  type RaCounters,
} from './dhcp6';
import { FENCE_REASONS, fenceReason, fenceRule, type FenceReason } from './fence';

/** What the metrics read from the manager (SandboxManager has both). */
export interface SandboxSource {
  list(): ListEntry[];
  /** every ready sandbox's counters, read within timeoutMs */
  counters(timeoutMs: number): Promise<Map<string, SandboxCounters>>;
}

export type Operation = 'setup' | 'teardown';

export const SANDBOX_STATES = ['setting-up', 'ready', 'tearing-down'] as const;

/** The step that failed, from the last step a setup or teardown reached (crash-points.ts). */
const FAILED_STEP: Record<string, string> = {
  'setup.': 'plan',
  'setup.planned': 'record',
  'setup.recorded': 'links_and_fence',
  'setup.built': 'links_and_fence', // the links are built, the fence still being applied
  'setup.fenced': 'dhcp',
  'setup.dhcp': 'finish',
  'setup.ready': 'finish',
  'teardown.': 'record',
  'teardown.recorded': 'unbuild',
};

const FD_REFUSAL_BY_ERRNO: Record<string, string> = {
  EACCES: 'bad_key',
  EBUSY: 'held',
  EAGAIN: 'not_ready',
  ENOENT: 'netns_gone',
  EINVAL: 'invalid_request',
};

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** An errno name as a label value; anything else (a bug's error) is "other". */
export function errnoLabel(e: unknown): string {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]{1,15}$/.test(code) ? code : 'other';
}

interface Sample {
  dhcp: DhcpCounters;
  dhcp6: Dhcp6Counters;
  ra: RaCounters;
  /** a NIC of the sandbox serves IPv6 (its per-sandbox DHCPv6 series are shown) */
  hasIpv6?: boolean;
  /** packets dropped per fence counter name */
  fence: Map<string, number>;
  drifted: boolean;
}

export interface MetricsOptions {
  /** per-sandbox series for at most this many sandboxes (default 128) */
  maxSandboxSeries?: number;
  /** how long a scrape waits for the fence counters of all sandboxes (default 5000 ms) */
  readTimeoutMs?: number;
}

export class TapwireMetrics {
  readonly registry = new prom.Registry();
  private source: SandboxSource | undefined;
  private readonly maxSandboxSeries: number;
  private readonly readTimeoutMs: number;
  /** the last step each running operation reached, by "<op>:<sandboxId>" */
  private readonly steps = new Map<string, string>();
  private readonly lastSeen = new Map<string, Sample>();
  private readonly retired: Sample = emptySample();
  private refreshing: Promise<void> | undefined;
  /** the counters read under way: one at a time, even when a scrape stopped waiting for it */
  private reading: Promise<Map<string, SandboxCounters> | undefined> | undefined;

  private readonly duration: prom.Histogram<'op' | 'outcome'>;
  private readonly errors: prom.Counter<'op' | 'step' | 'errno'>;
  private readonly recoverySeconds: prom.Histogram;
  private readonly recoveryErrors: prom.Counter<'step' | 'errno'>;
  private readonly fdHandouts: prom.Counter;
  private readonly fdRefusals: prom.Counter<'reason'>;
  private readonly sandboxes: prom.Gauge<'state'>;
  private readonly drifted: prom.Gauge;
  private readonly omitted: prom.Gauge;
  private readonly dhcpReceived: prom.Counter<'type'>;
  private readonly dhcpReplies: prom.Counter<'type'>;
  private readonly dhcpIgnored: prom.Counter<'reason'>;
  private readonly dhcpFaults: prom.Counter<'kind'>;
  private readonly dhcp6Received: prom.Counter<'type'>;
  private readonly dhcp6Replies: prom.Counter<'type'>;
  private readonly dhcp6Status: prom.Counter<'status'>;
  private readonly dhcp6Ignored: prom.Counter<'reason'>;
  private readonly dhcp6Faults: prom.Counter<'kind'>;
  private readonly routerSolicitations: prom.Counter<'outcome'>;
  private readonly routerAdverts: prom.Counter<'outcome'>;
  private readonly fenceDrops: prom.Counter<'rule'>;
  private readonly sandboxDhcp: prom.Counter<'sandbox' | 'type'>;
  private readonly sandboxDhcp6: prom.Counter<'sandbox' | 'type'>;
  private readonly sandboxFence: prom.Counter<'sandbox' | 'reason'>;

  constructor(o: MetricsOptions = {}) {
    this.maxSandboxSeries = o.maxSandboxSeries ?? 128;
    this.readTimeoutMs = o.readTimeoutMs ?? 5000;
    const registers = [this.registry];
    prom.collectDefaultMetrics({ register: this.registry });
    // gauges prom-client names like counters (promtool's lint refuses "_total" on a gauge)
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    this.duration = new prom.Histogram({
      name: 'tapwire_operation_duration_seconds',
      help: 'Setup and teardown durations, from the request to the reply',
      labelNames: ['op', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.errors = new prom.Counter({
      name: 'tapwire_operation_errors_total',
      help: 'Failed setups and teardowns, by the step that failed and the errno',
      labelNames: ['op', 'step', 'errno'],
      registers,
    });
    this.recoverySeconds = new prom.Histogram({
      name: 'tapwire_recovery_duration_seconds',
      help: 'Recovery of the records at start (reload, repair, DHCP restart)',
      buckets: [...DURATION_BUCKETS, 60, 120],
      registers,
    });
    this.recoveryErrors = new prom.Counter({
      name: 'tapwire_recovery_errors_total',
      help: 'Errors met by the recovery of the records at start, by the recovery step and the errno',
      labelNames: ['step', 'errno'],
      registers,
    });
    this.fdHandouts = new prom.Counter({
      name: 'tapwire_fd_handouts_total',
      help: 'Tap fd hand-outs on the fd socket',
      registers,
    });
    this.fdRefusals = new prom.Counter({
      name: 'tapwire_fd_refusals_total',
      help: 'Refused fd-socket peers and fds requests, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.sandboxes = new prom.Gauge({
      name: 'tapwire_sandboxes',
      help: 'Sandboxes by state',
      labelNames: ['state'],
      registers,
    });
    this.drifted = new prom.Gauge({
      name: 'tapwire_sandboxes_drifted',
      help: 'Sandboxes whose topology drifted from what setup made (tapctl describe says how)',
      registers,
    });
    this.omitted = new prom.Gauge({
      name: 'tapwire_metrics_sandboxes_without_series',
      help: 'Sandboxes past the per-sandbox series limit (counted in the node-wide series only)',
      registers,
    });
    this.dhcpReceived = new prom.Counter({
      name: 'tapwire_dhcp_received_total',
      help: 'DHCP messages received from guests, by message type',
      labelNames: ['type'],
      registers,
    });
    this.dhcpReplies = new prom.Counter({
      name: 'tapwire_dhcp_replies_total',
      help: 'DHCP replies sent to guests, by message type',
      labelNames: ['type'],
      registers,
    });
    this.dhcpIgnored = new prom.Counter({
      name: 'tapwire_dhcp_ignored_total',
      help: 'DHCP input not answered, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.dhcpFaults = new prom.Counter({
      name: 'tapwire_dhcp_faults_total',
      help: 'DHCP replies that could not be sent, and handler bugs',
      labelNames: ['kind'],
      registers,
    });
    this.dhcp6Received = new prom.Counter({
      name: 'tapwire_dhcp6_received_total',
      help: 'DHCPv6 messages received from guests, by message type',
      labelNames: ['type'],
      registers,
    });
    this.dhcp6Replies = new prom.Counter({
      name: 'tapwire_dhcp6_replies_total',
      help: 'DHCPv6 replies sent to guests, by message type',
      labelNames: ['type'],
      registers,
    });
    this.dhcp6Status = new prom.Counter({
      name: 'tapwire_dhcp6_status_codes_total',
      help: 'Status codes other than Success in DHCPv6 replies (per IA or message), by status',
      labelNames: ['status'],
      registers,
    });
    this.dhcp6Ignored = new prom.Counter({
      name: 'tapwire_dhcp6_ignored_total',
      help: 'DHCPv6 input not answered, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.dhcp6Faults = new prom.Counter({
      name: 'tapwire_dhcp6_faults_total',
      help: 'DHCPv6 replies that could not be sent, and handler bugs',
      labelNames: ['kind'],
      registers,
    });
    this.routerSolicitations = new prom.Counter({
      name: 'tapwire_router_solicitations_total',
      help: 'Router solicitations from guests, by outcome (answered, rate_limited, invalid)',
      labelNames: ['outcome'],
      registers,
    });
    this.routerAdverts = new prom.Counter({
      name: 'tapwire_router_advertisements_total',
      help: 'Router advertisements to guests (answers and periodic ones), sent or failed to send',
      labelNames: ['outcome'],
      registers,
    });
    this.fenceDrops = new prom.Counter({
      name: 'tapwire_fence_dropped_packets_total',
      help: 'Frames the sandbox fences dropped (nft counters), by rule',
      labelNames: ['rule'],
      registers,
    });
    this.sandboxDhcp = new prom.Counter({
      name: 'tapwire_sandbox_dhcp_messages_total',
      help: "One sandbox's DHCP messages: received, offer, ack, nak sent, ignored",
      labelNames: ['sandbox', 'type'],
      registers,
    });
    this.sandboxDhcp6 = new prom.Counter({
      name: 'tapwire_sandbox_dhcp6_messages_total',
      help: "One sandbox's DHCPv6 and NDP messages: received, advertise, reply, ignored, router solicitations and advertisements",
      labelNames: ['sandbox', 'type'],
      registers,
    });
    this.sandboxFence = new prom.Counter({
      name: 'tapwire_sandbox_fence_dropped_packets_total',
      help: "Frames one sandbox's fence dropped, by reason",
      labelNames: ['sandbox', 'reason'],
      registers,
    });
  }

  /** The manager the state metrics are read from. */
  attach(source: SandboxSource): void {
    this.source = source;
  }

  /** ManagerOptions.onProgress: remembers how far an operation got, for the error's step label. */
  stepReached(step: string, sandboxId: string): void {
    this.steps.set(`${step.slice(0, step.indexOf('.'))}:${sandboxId}`, step);
  }

  /** Times one setup or teardown (a teardown's result with errors counts as failed in "unbuild"). */
  async observe<T>(op: Operation, sandboxId: unknown, fn: () => Promise<T>): Promise<T> {
    const key = `${op}:${String(sandboxId)}`;
    this.steps.delete(key);
    const end = this.duration.startTimer({ op });
    try {
      const r = await fn();
      const partial = (r as { errors?: unknown[] } | undefined)?.errors?.length;
      end({ outcome: partial ? 'error' : 'ok' });
      if (partial) this.errors.inc({ op, step: 'unbuild', errno: 'EIO' });
      return r;
    } catch (e) {
      end({ outcome: 'error' });
      this.errors.inc({ op, step: FAILED_STEP[this.steps.get(key) ?? `${op}.`] ?? 'finish', errno: errnoLabel(e) });
      throw e;
    } finally {
      this.steps.delete(key);
    }
  }

  recovered(seconds: number): void {
    this.recoverySeconds.observe(seconds);
  }

  /** ManagerOptions.onRecoveryError: an error recovery met in `step` (a RecoveryStep). */
  recoveryFailed(step: string, error: unknown): void {
    this.recoveryErrors.inc({ step, errno: errnoLabel(error) });
  }

  fdHandedOut(): void {
    this.fdHandouts.inc();
  }

  /** A refused fd-socket peer ('peer_not_allowed', 'too_many_connections') or fds request (its error). */
  fdRefused(reason: 'peer_not_allowed' | 'too_many_connections' | { error: unknown }): void {
    const r = typeof reason === 'string' ? reason : (FD_REFUSAL_BY_ERRNO[errnoLabel(reason.error)] ?? 'other');
    this.fdRefusals.inc({ reason: r });
  }

  /** The Prometheus text of every series, the state ones read now. */
  async text(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  /** The node-wide series as JSON (`tapctl stats`): per-sandbox ones are in `tapctl describe`. */
  async nodeJson(): Promise<prom.MetricObjectWithValues<prom.MetricValue<string>>[]> {
    await this.refresh();
    const all = await this.registry.getMetricsAsJSON();
    return all.filter((m) => !m.name.startsWith('tapwire_sandbox_'));
  }

  /** Reads the state metrics; concurrent scrapes share one read. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /**
   * Every ready sandbox's counters, or undefined when they cannot be read or take longer
   * than the read's own deadline and a second (the last values then stand): a scrape never
   * waits on a stuck read, and no second read starts while one is under way.
   */
  private async readCounters(): Promise<Map<string, SandboxCounters> | undefined> {
    this.reading ??= this.source!.counters(this.readTimeoutMs)
      .catch(() => undefined)
      .finally(() => (this.reading = undefined));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), this.readTimeoutMs + 1000);
      timer.unref();
    });
    try {
      return await Promise.race([this.reading, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async doRefresh(): Promise<void> {
    const entries = this.source?.list() ?? [];
    this.sandboxes.reset();
    for (const s of SANDBOX_STATES) this.sandboxes.set({ state: s }, 0);
    for (const e of entries) this.sandboxes.inc({ state: e.state });
    const ids = entries.map((e) => e.sandboxId).sort();
    // only ready sandboxes are read: a teardown stops the DHCP servers first, and their
    // counts must not be lost with them (the last values stand until the record goes)
    const ready = new Set(entries.filter((e) => e.state === 'ready').map((e) => e.sandboxId));
    const read = ready.size ? await this.readCounters() : undefined;
    const samples = ids.map((id) => {
      const c = ready.has(id) ? read?.get(id) : undefined;
      return c ? sample(c) : undefined;
    });
    const live = new Set(ids);
    for (const [id, s] of this.lastSeen) {
      if (live.has(id)) continue;
      addSample(this.retired, s); // gone: its counts stay in the totals
      this.lastSeen.delete(id);
    }
    ids.forEach((id, i) => {
      const s = samples[i];
      // unreadable now (its netns went): the last values stand; and never a count that goes down
      if (s) this.lastSeen.set(id, maxSample(this.lastSeen.get(id), s));
    });
    const total = emptySample();
    addSample(total, this.retired);
    let drifted = 0;
    for (const s of this.lastSeen.values()) {
      addSample(total, s);
      if (s.drifted) drifted++;
    }
    this.drifted.set(drifted);
    setAll(this.dhcpReceived, DHCP_RECEIVED, 'type', total.dhcp);
    setAll(this.dhcpReplies, DHCP_REPLIES, 'type', total.dhcp);
    setAll(this.dhcpIgnored, DHCP_IGNORED, 'reason', total.dhcp);
    setAll(this.dhcpFaults, DHCP_FAULTS, 'kind', total.dhcp);
    setAll(this.dhcp6Received, DHCP6_RECEIVED, 'type', total.dhcp6);
    setAll(this.dhcp6Replies, DHCP6_REPLIES, 'type', total.dhcp6);
    setAll(this.dhcp6Status, DHCP6_STATUS, 'status', total.dhcp6);
    setAll(this.dhcp6Ignored, DHCP6_IGNORED, 'reason', total.dhcp6);
    setAll(this.dhcp6Faults, DHCP6_FAULTS, 'kind', total.dhcp6);
    setAll(this.routerSolicitations, RS_OUTCOMES, 'outcome', total.ra);
    setAll(this.routerAdverts, RA_SENT, 'outcome', total.ra);
    this.fenceDrops.reset();
    const byRule = new Map<string, number>();
    for (const [name, n] of total.fence) byRule.set(fenceRule(name), (byRule.get(fenceRule(name)) ?? 0) + n);
    for (const [rule, n] of byRule) this.fenceDrops.inc({ rule }, n);

    this.sandboxDhcp.reset();
    this.sandboxDhcp6.reset();
    this.sandboxFence.reset();
    const shown = ids.slice(0, this.maxSandboxSeries);
    this.omitted.set(ids.length - shown.length);
    for (const id of shown) {
      const s = this.lastSeen.get(id);
      if (!s) continue;
      for (const [type, n] of Object.entries(dhcpSummary(s.dhcp))) this.sandboxDhcp.inc({ sandbox: id, type }, n);
      if (s.hasIpv6)
        for (const [type, n] of Object.entries(dhcp6Summary(s.dhcp6, s.ra)))
          this.sandboxDhcp6.inc({ sandbox: id, type }, n);
      const reasons = Object.fromEntries(FENCE_REASONS.map((r) => [r, 0])) as Record<FenceReason, number>;
      for (const [name, n] of s.fence) reasons[fenceReason(name)] += n;
      for (const [reason, n] of Object.entries(reasons)) this.sandboxFence.inc({ sandbox: id, reason }, n);
    }
  }
}

function emptySample(): Sample {
  return { dhcp: newCounters(), dhcp6: newCounters6(), ra: newRaCounters(), fence: new Map(), drifted: false };
}

/** Adds each of `into`'s numeric fields from `from` (missing ones count 0). */
function addFields<T extends object>(into: T, from: Partial<Record<keyof T, unknown>> | undefined): void {
  for (const k of Object.keys(into) as (keyof T)[]) (into[k] as number) += Number(from?.[k] ?? 0) || 0;
}

/** Sets each of `b`'s numeric fields to the larger of `a`'s and `b`'s. */
function maxFields<T extends object>(a: T, b: T): void {
  for (const k of Object.keys(b) as (keyof T)[]) (b[k] as number) = Math.max(a[k] as number, b[k] as number);
}

function sample(s: SandboxCounters): Sample {
  const out = emptySample();
  for (const server of s.dhcp) addFields(out.dhcp, server);
  const ipv6 = s.ipv6;
  for (const nic of ipv6) {
    addFields(out.dhcp6, nic.dhcp6);
    addFields(out.ra, nic.ra);
  }
  out.hasIpv6 = ipv6.length > 0;
  // fence undefined (not read in time): no counts here, and maxSample keeps the last ones
  out.fence = new Map((s.fence ?? []).map((f) => [f.name, f.packets]));
  out.drifted = s.drifted;
  return out;
}

function maxSample(a: Sample | undefined, b: Sample): Sample {
  if (!a) return b;
  maxFields(a.dhcp, b.dhcp);
  maxFields(a.dhcp6, b.dhcp6);
  maxFields(a.ra, b.ra);
  b.hasIpv6 ||= a.hasIpv6;
  for (const [name, n] of a.fence) b.fence.set(name, Math.max(n, b.fence.get(name) ?? 0));
  return b;
}

function addSample(into: Sample, s: Sample): void {
  addFields(into.dhcp, s.dhcp);
  addFields(into.dhcp6, s.dhcp6);
  addFields(into.ra, s.ra);
  for (const [name, n] of s.fence) into.fence.set(name, (into.fence.get(name) ?? 0) + n);
}

/** Sets a counter's series to the given totals (a counter has no set: reset, then inc). */
function setAll<L extends string, C extends object>(
  c: prom.Counter<L>,
  list: [string, keyof C][],
  label: L,
  totals: C,
): void {
  c.reset();
  for (const [value, key] of list) c.inc({ [label]: value } as Partial<Record<L, string>>, totals[key] as number);
}
