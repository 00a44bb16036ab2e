// Putting the fence in place, reading it, and taking it away, in a pod netns. It goes in
// as one nf_tables netlink batch (batch.ts) sent from a pool thread inside the netns;
// reading and removing go through nft (libnftables, or the CLI). TAPWIRE_NFT=lib or
// =cli puts it in through nft as well, from the same policy written as a script.
import { NETLINK_NETFILTER } from '../../net/nfnl';
import { errnoName, netlinkBatchIn, type NetlinkReply } from '../../native';
import type { Batch } from '../../net/nfnl';
import { TapError } from '../errors';
import { fenceBatch } from './batch';
import { netnsState, nftInNetns, requireNetns } from './nft';
import { fenceRuleset } from './ruleset';
import type { FenceCounter, FenceNic } from './types';
import { checkTable } from './validate';

/** Defines the fence in one transaction (add table, flush, rules); safe to repeat. */
export async function applyFence(netnsPath: string, table: string, nics: FenceNic[]): Promise<void> {
  const verb = `apply fence "${table}"`;
  if (process.env.TAPWIRE_NFT === 'lib' || process.env.TAPWIRE_NFT === 'cli') {
    const script = fenceRuleset(table, nics); // validates before anything runs
    requireNetns(netnsPath, verb);
    await nftInNetns(netnsPath, { script }, verb);
    return;
  }
  await applyBatchInNetns(netnsPath, fenceBatch(table, nics), verb); // the batch validates before anything runs
}

/**
 * Sends an nf_tables batch into the netns (which must be there) as one transaction; a
 * failure is an EIO TapError saying `verb`, the netns and why the kernel refused.
 */
export async function applyBatchInNetns(netnsPath: string, batch: Batch, verb: string): Promise<void> {
  requireNetns(netnsPath, verb);
  let replies;
  try {
    replies = await netlinkBatchIn(netnsPath, NETLINK_NETFILTER, batch.buf);
  } catch (e) {
    throw new TapError('EIO', `failed to ${verb} in netns ${netnsPath}: ${(e as Error).message}`);
  }
  const why = batchFailure(batch, replies);
  if (why !== undefined) throw new TapError('EIO', `failed to ${verb} in netns ${netnsPath}: ${why}`);
}

/**
 * Why the kernel did not take the batch, from its replies, or undefined when it did.
 * Only the last message asked for an ack; any error fails the whole transaction (the
 * kernel aborted it), whichever message it names: a failed commit is reported against
 * the batch's first message (whose own ack may follow with the same number), a refused
 * batch (EPERM, no nf_tables) against BEGIN.
 */
export function batchFailure(batch: Batch, replies: readonly NetlinkReply[]): string | undefined {
  const what = new Map(batch.seqs.map((m) => [m.seq, m.what]));
  what.set(batch.beginSeq, 'the batch');
  const errors = replies.filter((r) => r.error !== 0);
  const last = batch.seqs[batch.seqs.length - 1]!;
  if (errors.length === 0 && replies.some((r) => r.seq === last.seq)) return undefined;
  if (errors.length === 0) return `no answer from the kernel to ${last.what}`;
  const why = errors.slice(0, 3).map((r) => {
    const { code } = errnoName(r.error);
    return `${what.get(r.seq) ?? `message ${r.seq}`}: ${code}${r.message ? ` (${r.message})` : ''}`;
  });
  return why.join('; ') + (errors.length > 3 ? `; and ${errors.length - 3} more` : '');
}

/** Deletes the table. Already gone, or its netns gone, counts as done. */
export async function removeFence(netnsPath: string, table: string): Promise<void> {
  const t = checkTable(table);
  if (netnsState(netnsPath) !== 'ok') return;
  // add-then-delete in one transaction: no "does not exist" error to tell apart
  try {
    await nftInNetns(netnsPath, { script: `add table bridge ${t}\ndelete table bridge ${t}\n` }, `remove fence "${t}"`);
  } catch (e) {
    if (netnsState(netnsPath) !== 'ok') return; // the netns went away meanwhile
    throw e;
  }
}

/** Whether the table exists (false when the netns is gone). */
export async function fenceExists(netnsPath: string, table: string): Promise<boolean> {
  const t = checkTable(table);
  if (netnsState(netnsPath) !== 'ok') return false;
  const { stdout } = await nftInNetns(netnsPath, { script: 'list tables bridge', json: true }, `list tables`);
  return jsonItems(stdout, netnsPath).some((it) => {
    const tab = (it as { table?: { family?: unknown; name?: unknown } }).table;
    return tab?.family === 'bridge' && tab.name === t;
  });
}

/** Every named counter of the table, in rule order. */
export async function readFenceCounters(netnsPath: string, table: string): Promise<FenceCounter[]> {
  const t = checkTable(table);
  requireNetns(netnsPath, `read fence "${t}" counters`);
  const verb = `read fence "${t}" counters`;
  let stdout: string;
  try {
    ({ stdout } = await nftInNetns(netnsPath, { script: `list counters table bridge ${t}`, json: true }, verb));
  } catch (e) {
    // tell "no such table" apart without reading nft's message
    if (!(await fenceExists(netnsPath, t).catch(() => true))) {
      throw new TapError('ENOENT', `failed to ${verb} in netns ${netnsPath}: no such table`, 'table');
    }
    throw e;
  }
  const out: (FenceCounter & { handle: number })[] = [];
  for (const it of jsonItems(stdout, netnsPath)) {
    const c = (it as { counter?: Record<string, unknown> }).counter;
    if (!c || typeof c.name !== 'string') continue;
    out.push({
      name: c.name,
      packets: Number(c.packets ?? 0),
      bytes: Number(c.bytes ?? 0),
      handle: Number(c.handle ?? 0),
    });
  }
  // handles grow in creation order, which is rule order
  return out.sort((a, b) => a.handle - b.handle).map(({ name, packets, bytes }) => ({ name, packets, bytes }));
}

function jsonItems(stdout: string, netnsPath: string): unknown[] {
  try {
    const parsed = JSON.parse(stdout) as { nftables?: unknown };
    return Array.isArray(parsed.nftables) ? parsed.nftables : [];
  } catch (e) {
    throw new TapError('EIO', `failed to parse nft JSON output in netns ${netnsPath}: ${(e as Error).message}`);
  }
}
