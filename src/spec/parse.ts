// From text (a pod annotation, JSON or YAML) to a validated NetworkSpec, or a SpecError
// listing every problem. JSON is tried first (the common case, and its errors are plainer);
// anything else is read as YAML 1.2 with the core schema (so `de:ad:00:00:be:af` stays a
// string, unlike YAML 1.1's base-60 numbers, whatever %YAML directive the text has), keys
// only strings and each once, aliases bounded.
import * as v from 'valibot';
import { parseDocument } from 'yaml';
import { parseMac } from '../net/mac';
import { quote } from '../util/quote';
import { SpecError, SpecProblem } from './errors';
import { crossFieldProblems } from './rules';
import { InterfaceShape, NetworkShape, specSchema, unknownFields } from './schema';
import { InterfaceSpec, NETWORK_SPEC_ANNOTATION, NetworkSpec, NetworkSpecEntry, SPEC_LIMITS } from './types';

/** The text as a plain value; a SpecError with one problem when it is neither JSON nor YAML. */
export function parseSpecText(text: string): unknown {
  if (Buffer.byteLength(text) > SPEC_LIMITS.textBytes) {
    throw new SpecError([{ path: '', reason: `is longer than ${SPEC_LIMITS.textBytes} bytes` }]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    /* not JSON: YAML then */
  }
  try {
    const doc = parseDocument(text, {
      schema: 'core',
      uniqueKeys: true,
      stringKeys: true,
      prettyErrors: false,
      merge: false,
    });
    const err = doc.errors[0];
    if (err) throw err;
    return doc.toJS({ maxAliasCount: SPEC_LIMITS.yamlAliases }) as unknown;
  } catch (e) {
    const why = e instanceof RangeError ? 'nests too deeply' : (e as Error).message.split('\n')[0]!;
    throw new SpecError([{ path: '', reason: `is neither JSON nor YAML: ${why.slice(0, 200)}` }]);
  }
}

/** `a.b[0].c` from a valibot issue path. */
function issuePath(path: readonly { key: unknown }[] | undefined): string {
  let out = '';
  for (const { key } of path ?? []) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${quote(key, 40)}]`;
  }
  return out;
}

function issueProblem(issue: v.BaseIssue<unknown>): SpecProblem {
  const path = issuePath(issue.path);
  if (issue.type === 'max_length' && Array.isArray(issue.input)) return { path, reason: issue.message };
  if (issue.kind === 'schema' && issue.input === undefined && issue.expected?.startsWith('"')) {
    return { path, reason: 'is required' };
  }
  return { path, value: issue.input, reason: issue.message };
}

/** The spec, checked: every problem found, or the spec with defaults filled and networks in interface order. */
export function validateSpec(raw: unknown): NetworkSpec {
  const r = v.safeParse(specSchema, raw, { abortEarly: false, abortPipeEarly: true });
  const problems = r.success ? [] : r.issues.map(issueProblem);
  for (const u of unknownFields(raw)) problems.push({ ...u, reason: 'is not a known field' });
  problems.push(...crossFieldProblems(raw));
  if (problems.length || !r.success) throw new SpecError(problems);
  const s = r.output;
  const byName = new Map(s.networks.map((n) => [n.name, n]));
  return {
    apiVersion: s.apiVersion,
    interfaces: s.interfaces.map(toInterface),
    networks: s.interfaces.map((it) => toNetwork(byName.get(it.name)!)),
    autoattachPodInterface: s.autoattachPodInterface,
  };
}

function toInterface(it: InterfaceShape): InterfaceSpec {
  return {
    name: it.name,
    model: it.model,
    ...(it.macAddress !== undefined ? { macAddress: parseMac(it.macAddress)! } : {}),
    ports: it.ports.map((p) => ({
      ...(p.name !== undefined ? { name: p.name } : {}),
      port: p.port,
      ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
      protocol: p.protocol,
    })),
    ...(it.queues !== undefined ? { queues: it.queues } : {}),
    ...(it.dhcpOptions !== undefined ? { dhcpOptions: it.dhcpOptions } : {}),
    binding:
      it.masquerade !== undefined
        ? 'masquerade'
        : it.slirp !== undefined
          ? 'slirp'
          : it.macvtap !== undefined
            ? 'macvtap'
            : 'bridge',
  };
}

function toNetwork(n: NetworkShape): NetworkSpecEntry {
  if (n.multus) {
    const [a, b] = n.multus.networkName.split('/');
    return { name: n.name, kind: 'multus', networkName: b === undefined ? { name: a! } : { namespace: a!, name: b } };
  }
  if (n.resource) return { name: n.name, kind: 'resource', ...n.resource };
  if (n.l2) return { name: n.name, kind: 'l2', interfaceName: n.l2.interfaceName };
  return {
    name: n.name,
    kind: 'pod',
    ...(n.pod?.vmNetworkCIDR !== undefined ? { vmNetworkCIDR: n.pod.vmNetworkCIDR } : {}),
    ...(n.pod?.vmIPv6NetworkCIDR !== undefined ? { vmIPv6NetworkCIDR: n.pod.vmIPv6NetworkCIDR } : {}),
  };
}

/** Parses and validates spec text. */
export function parseNetworkSpec(text: string): NetworkSpec {
  return validateSpec(parseSpecText(text));
}

/** The spec a pod's annotations carry, or undefined when they carry none (today's single pod NIC). */
export function specFromAnnotations(annotations: Record<string, string> | undefined): NetworkSpec | undefined {
  const text = annotations?.[NETWORK_SPEC_ANNOTATION];
  if (text === undefined) return undefined;
  return parseNetworkSpec(text);
}

/**
 * The interfaces a spec gives the guest: its own, or, when it lists none and leaves
 * autoattachPodInterface on, one bridge NIC named "default" on the pod network (KubeVirt's rule).
 * (None at all is refused by validation: tapmanager builds a VM network of at least one NIC.)
 */
export function effectiveNics(spec: NetworkSpec): { interfaces: InterfaceSpec[]; networks: NetworkSpecEntry[] } {
  if (spec.interfaces.length > 0 || !spec.autoattachPodInterface) return spec;
  return {
    interfaces: [{ name: 'default', model: 'virtio', ports: [], binding: 'bridge' }],
    networks: [{ name: 'default', kind: 'pod' }],
  };
}
