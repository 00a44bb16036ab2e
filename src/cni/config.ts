// Network configuration files, loaded the way kubelet/libcni do: every .conflist, .conf
// and .json in the directory, sorted by file name; a .conf/.json holding a single plugin
// is wrapped into a one-plugin list; files that cannot be used are reported and skipped;
// the first valid one is the pod network.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CniConfigError } from './errors';
import { isSupportedVersion, SUPPORTED_VERSIONS } from './version';

export const DEFAULT_CONF_DIR = '/etc/cni/net.d';
export const CONF_EXTENSIONS = ['.conflist', '.conf', '.json'];

/** One plugin entry of a list: `type` plus the plugin's own fields. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [field: string]: unknown;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck: boolean;
  plugins: PluginConf[];
  /** The file it came from ("" when built in code). */
  file: string;
}

/** Network names: alphanumerics, '-', '_' and '.', as the spec asks. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function checkPlugin(file: string, p: unknown, where: string): PluginConf {
  const o = asObject(p);
  if (!o) throw new CniConfigError(file, `${where} is not an object`);
  if (typeof o.type !== 'string' || o.type === '' || o.type.includes('/')) {
    throw new CniConfigError(file, `${where}.type ${JSON.stringify(o.type)} is not a plugin name`);
  }
  if (o.capabilities !== undefined && !asObject(o.capabilities)) {
    throw new CniConfigError(file, `${where}.capabilities is not an object`);
  }
  return o as PluginConf;
}

function checkHead(file: string, o: Record<string, unknown>): { name: string; cniVersion: string } {
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) {
    throw new CniConfigError(file, `"name" ${JSON.stringify(o.name)} is not a valid network name`);
  }
  if (!isSupportedVersion(o.cniVersion)) {
    throw new CniConfigError(
      file,
      `"cniVersion" ${JSON.stringify(o.cniVersion)} is not one of ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return { name: o.name, cniVersion: o.cniVersion };
}

function parseJson(file: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniConfigError(file, `not JSON: ${(e as Error).message}`);
  }
  const o = asObject(v);
  if (!o) throw new CniConfigError(file, 'not a JSON object');
  return o;
}

/** Parses a .conflist text. */
export function parseConfList(text: string, file = ''): NetworkConfigList {
  const o = parseJson(file, text);
  const head = checkHead(file, o);
  if (!Array.isArray(o.plugins) || o.plugins.length === 0) {
    throw new CniConfigError(file, '"plugins" must be a non-empty list');
  }
  const plugins = o.plugins.map((p, i) => checkPlugin(file, p, `plugins[${i}]`));
  return { ...head, disableCheck: o.disableCheck === true, plugins, file };
}

/** Parses a single-plugin .conf/.json text into a one-plugin list. */
export function parseConf(text: string, file = ''): NetworkConfigList {
  const o = parseJson(file, text);
  if (Array.isArray(o.plugins)) return parseConfList(text, file); // a list saved as .json
  const head = checkHead(file, o);
  const { name: _n, cniVersion: _v, ...plugin } = o;
  return { ...head, disableCheck: false, plugins: [checkPlugin(file, plugin, 'plugin')], file };
}

export function parseConfFile(file: string, text: string): NetworkConfigList {
  return path.extname(file) === '.conflist' ? parseConfList(text, file) : parseConf(text, file);
}

export interface LoadedNetworks {
  /** Valid networks in file-name order; the first is the pod network. */
  networks: NetworkConfigList[];
  /** Files that were skipped, each with why. */
  invalid: CniConfigError[];
}

/** Loads every config file in dir. A missing directory gives no networks and one error. */
export function loadNetworks(dir: string): LoadedNetworks {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    return { networks: [], invalid: [new CniConfigError(dir, `cannot read directory: ${(e as Error).message}`)] };
  }
  const networks: NetworkConfigList[] = [];
  const invalid: CniConfigError[] = [];
  for (const name of names.filter((n) => CONF_EXTENSIONS.includes(path.extname(n))).sort()) {
    const file = path.join(dir, name);
    try {
      if (!fs.statSync(file).isFile()) continue;
      networks.push(parseConfFile(file, fs.readFileSync(file, 'utf8')));
    } catch (e) {
      invalid.push(e instanceof CniConfigError ? e : new CniConfigError(file, (e as Error).message));
    }
  }
  return { networks, invalid };
}

/** The pod network (first valid config), or an error saying why there is none. */
export function defaultNetwork(dir: string): NetworkConfigList {
  const { networks, invalid } = loadNetworks(dir);
  const first = networks[0];
  if (first) return first;
  const why = invalid.length ? invalid.map((e) => e.message).join('; ') : 'no .conflist, .conf or .json files';
  throw new CniConfigError(dir, `no valid CNI network config: ${why}`);
}
