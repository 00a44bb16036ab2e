// NetworkAttachmentDefinitions read from a directory instead of the Kubernetes API: one
// file per NAD, `<dir>/<namespace>/<name>.json` (or `.yaml`, `.yml`), holding either the
// NAD object (apiVersion k8s.cni.cncf.io/v1, kind NetworkAttachmentDefinition, metadata,
// spec.config: the CNI config as a JSON string, per the NPWG multi-network spec) or just
// that config (a .conf or .conflist object). A directory per namespace mirrors the
// `namespace/name` reference without a separator a name could hold, and lets an operator
// sync `kubectl get net-attach-def -n NS -o yaml` output file by file.
// As Multus does, a config without a "name" takes the NAD's name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isDnsLabel, isDnsName } from '../net/dns-name';
import { quote } from '../util/quote';
import { parseConf, type NetworkConfigList } from './config';

export const NAD_API_VERSION = 'k8s.cni.cncf.io/v1';
export const NAD_KIND = 'NetworkAttachmentDefinition';
export const NAD_EXTENSIONS = ['.json', '.yaml', '.yml'] as const;
/** A NAD file larger than this is refused (a CNI config is a few KiB). */
export const NAD_MAX_BYTES = 1 << 20;

export interface NadRef {
  namespace: string;
  name: string;
}

export const nadRefText = (r: NadRef): string => `${r.namespace}/${r.name}`;

/** Why a NAD cannot be used; `ref` names it, `file` where it was looked for. */
export class NadError extends Error {
  readonly code = 'ENAD';
  constructor(
    readonly ref: string,
    readonly file: string,
    why: string,
    /** true when there is no file for it at all (the NAD does not exist) */
    readonly missing = false,
  ) {
    super(`network-attachment-definition ${ref}${file ? ` (${file})` : ''}: ${why}`);
    this.name = 'NadError';
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The file that holds `ref` in `dir`; a NadError when there is none or more than one. */
export function nadFile(dir: string, ref: NadRef): string {
  const text = nadRefText(ref);
  if (!isDnsLabel(ref.namespace) || !isDnsName(ref.name)) {
    throw new NadError(text, '', 'is not a namespace/name reference');
  }
  const found = NAD_EXTENSIONS.map((e) => path.join(dir, ref.namespace, `${ref.name}${e}`)).filter((f) => {
    try {
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  });
  if (found.length === 0) {
    const where = path.join(dir, ref.namespace, `${ref.name}{${NAD_EXTENSIONS.join(',')}}`);
    throw new NadError(text, where, 'not found', true);
  }
  if (found.length > 1) throw new NadError(text, found.join(', '), 'is defined by more than one file');
  return found[0]!;
}

/** The NAD's CNI config as a network config list. */
export function parseNad(ref: NadRef, file: string, text: string): NetworkConfigList {
  const r = nadRefText(ref);
  let doc: unknown;
  try {
    doc =
      path.extname(file) === '.json'
        ? JSON.parse(text)
        : parseYaml(text, { schema: 'core', maxAliasCount: 16, stringKeys: true });
  } catch (e) {
    throw new NadError(
      r,
      file,
      `is not ${path.extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  if (!isObject(doc)) throw new NadError(r, file, 'does not hold an object');
  let config: unknown = doc;
  if (doc.kind !== undefined || doc.apiVersion !== undefined || doc.spec !== undefined) {
    if (doc.kind !== NAD_KIND) throw new NadError(r, file, `kind ${quote(doc.kind)} is not ${NAD_KIND}`);
    if (doc.apiVersion !== NAD_API_VERSION)
      throw new NadError(r, file, `apiVersion ${quote(doc.apiVersion)} is not ${NAD_API_VERSION}`);
    const meta = isObject(doc.metadata) ? doc.metadata : {};
    if (meta.name !== undefined && meta.name !== ref.name)
      throw new NadError(r, file, `metadata.name ${quote(meta.name)} is not ${quote(ref.name)}`);
    if (meta.namespace !== undefined && meta.namespace !== ref.namespace)
      throw new NadError(r, file, `metadata.namespace ${quote(meta.namespace)} is not ${quote(ref.namespace)}`);
    const spec = isObject(doc.spec) ? doc.spec : undefined;
    if (typeof spec?.config !== 'string' || spec.config.trim() === '') {
      throw new NadError(r, file, 'spec.config must be the CNI config as a JSON string');
    }
    try {
      config = JSON.parse(spec.config);
    } catch (e) {
      throw new NadError(r, file, `spec.config is not JSON: ${(e as Error).message}`);
    }
    if (!isObject(config)) throw new NadError(r, file, 'spec.config is not a JSON object');
  }
  const withName = { ...(config as Record<string, unknown>) };
  withName.name ??= ref.name;
  try {
    return { ...parseConf(JSON.stringify(withName), file), file };
  } catch (e) {
    throw new NadError(r, file, (e as Error).message);
  }
}

/** Reads and parses the NAD `ref` from `dir`. */
export function loadNad(dir: string, ref: NadRef): NetworkConfigList {
  const file = nadFile(dir, ref);
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const size = fs.fstatSync(fd).size;
      if (size > NAD_MAX_BYTES) throw new NadError(nadRefText(ref), file, `is larger than ${NAD_MAX_BYTES} bytes`);
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (e instanceof NadError) throw e;
    throw new NadError(nadRefText(ref), file, `cannot be read: ${(e as Error).message}`);
  }
  return parseNad(ref, file, text);
}
