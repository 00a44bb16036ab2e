// ADD, CHECK and DEL of one network config list for one attachment (container id +
// netns + interface): plugins run in order for ADD/CHECK and in reverse for DEL, each
// handed the previous result as prevResult; the result is cached on disk so DEL (also
// after a restart) runs with the same config and prevResult.
import { isNetns } from '../net/netns';
import type { CniResult } from './result';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { CapabilityArgs, cniArgs, PodArgs, runtimeConfigFor } from './args';
import { ResultCache, CACHE_KIND } from './cache';
import type { NetworkConfigList, PluginConf } from './config';
import { execPlugin, ExecOptions } from './exec';
import { convertResult, hasCheck } from './version';

export interface Attachment {
  containerId: string;
  /** Path of the pod's netns. */
  netns: string;
  ifName: string;
  pod: PodArgs;
  capabilities?: CapabilityArgs;
}

export interface CniRunnerOptions extends ExecOptions {
  /** Where ADD results are cached (one file per attachment). */
  cacheDir: string;
}

/** The stdin a plugin gets: its own fields plus name, cniVersion, prevResult and runtimeConfig. */
export function pluginStdin(
  list: NetworkConfigList,
  plugin: PluginConf,
  prevResult: CniResult | undefined,
  caps: CapabilityArgs,
): Buffer {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf.prevResult;
  delete conf.runtimeConfig;
  if (prevResult) conf.prevResult = prevResult;
  const rc = runtimeConfigFor(plugin, caps);
  if (rc) conf.runtimeConfig = rc;
  return Buffer.from(JSON.stringify(conf));
}

export class CniRunner {
  readonly cache: ResultCache;
  private readonly log: Logger;

  constructor(readonly opts: CniRunnerOptions) {
    this.cache = new ResultCache(opts.cacheDir);
    this.log = opts.logger ?? silentLogger;
  }

  /** Runs ADD through the list; returns the final result in the list's cniVersion. */
  async add(list: NetworkConfigList, a: Attachment): Promise<CniResult> {
    const args = cniArgs(a.pod);
    const caps = a.capabilities ?? {};
    const base = {
      kind: CACHE_KIND,
      networkName: list.name,
      containerId: a.containerId,
      ifName: a.ifName,
      cniArgs: args,
      capabilityArgs: caps,
      config: list,
    } as const;
    // Written before the first plugin runs, so a DEL after a crash mid-ADD uses this config.
    await this.cache.put({ ...base });
    let prev: CniResult | undefined;
    for (const plugin of list.plugins) {
      const env = { command: 'ADD' as const, containerId: a.containerId, netns: a.netns, ifName: a.ifName, args };
      const out = await execPlugin(this.opts, plugin.type, env, pluginStdin(list, plugin, prev, caps));
      prev = convertResult(out, list.cniVersion, plugin.type, 'ADD');
    }
    if (!prev) throw new Error(`CNI network "${list.name}" has no plugins`);
    await this.cache.put({ ...base, result: prev });
    this.log.debug('ADD done', { network: list.name, containerId: a.containerId, result: prev });
    return prev;
  }

  /** Runs CHECK through the list with the cached result (a no-op before 0.4.0 or with disableCheck). */
  async check(list: NetworkConfigList, a: Attachment): Promise<void> {
    if (!hasCheck(list.cniVersion) || list.disableCheck) return;
    const cached = await this.cache.get(list.name, a.containerId, a.ifName);
    if (!cached?.result) throw new Error(`no cached CNI result for network "${list.name}" container ${a.containerId}`);
    const caps = cached.capabilityArgs;
    for (const plugin of cached.config.plugins) {
      const env = {
        command: 'CHECK' as const,
        containerId: a.containerId,
        netns: a.netns,
        ifName: a.ifName,
        args: cached.cniArgs,
      };
      await execPlugin(this.opts, plugin.type, env, pluginStdin(cached.config, plugin, cached.result, caps));
    }
  }

  /**
   * Runs DEL through the list in reverse. `network` is the list, or just its name; the
   * cached config and result win over it when present; a name with nothing cached is a
   * no-op. A missing netns is passed as "" (the spec's "already gone"). Idempotent:
   * the cache entry goes only when every plugin succeeded.
   */
  async del(network: NetworkConfigList | string, a: Attachment): Promise<void> {
    const name = typeof network === 'string' ? network : network.name;
    const cached = await this.cache.get(name, a.containerId, a.ifName);
    const conf = cached?.config ?? (typeof network === 'string' ? undefined : network);
    if (!conf) {
      // The cache is written before ADD's first plugin and removed after DEL's last, so
      // no entry means there is nothing of this attachment left to undo.
      this.log.debug('DEL: nothing cached', { network: name, containerId: a.containerId });
      return;
    }
    const args = cached?.cniArgs ?? cniArgs(a.pod);
    const caps = cached?.capabilityArgs ?? a.capabilities ?? {};
    const prev = hasCheck(conf.cniVersion) ? cached?.result : undefined;
    const netns = a.netns && isNetns(a.netns) ? a.netns : '';
    for (const plugin of [...conf.plugins].reverse()) {
      const env = { command: 'DEL' as const, containerId: a.containerId, netns, ifName: a.ifName, args };
      await execPlugin(this.opts, plugin.type, env, pluginStdin(conf, plugin, prev, caps));
    }
    await this.cache.remove(conf.name, a.containerId, a.ifName);
    this.log.debug('DEL done', { network: conf.name, containerId: a.containerId, netns });
  }
}
