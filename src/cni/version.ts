// CNI result versions: which cniVersions tapwire speaks, and conversion between the
// 0.3.x/0.4.0 result shape (ips[].version) and the 1.x shape (no ips[].version).
import type { CniResult } from './result';
import { CNI_CODE, CniError } from './errors';

/** Config/result versions accepted (0.1/0.2 results have another shape and are refused). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

export function isSupportedVersion(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** True for versions that know CHECK and DEL-with-prevResult (0.4.0 and later). */
export function hasCheck(v: string): boolean {
  return v === '0.4.0' || v.startsWith('1.');
}

function isV1(v: string): boolean {
  return v.startsWith('1.');
}

function fail(plugin: string, command: string, msg: string): CniError {
  return new CniError({ code: CNI_CODE.DECODE_FAILURE, msg, plugin, command });
}

/**
 * Checks a plugin's result (parsed stdout) and returns it normalised to `target`, the
 * cniVersion of the network configuration (what the next plugin's prevResult must be).
 */
export function convertResult(raw: unknown, target: string, plugin = '', command = 'ADD'): CniResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw fail(plugin, command, `result is not a JSON object: ${JSON.stringify(raw)?.slice(0, 200)}`);
  }
  const r = raw as Record<string, unknown>;
  const from = r.cniVersion;
  if (!isSupportedVersion(from)) {
    throw new CniError({
      code: CNI_CODE.INCOMPATIBLE_VERSION,
      msg: `result cniVersion ${JSON.stringify(from)} is not one of ${SUPPORTED_VERSIONS.join(', ')}`,
      plugin,
      command,
    });
  }
  if (r.ips !== undefined && !Array.isArray(r.ips)) throw fail(plugin, command, 'result field "ips" is not a list');
  if (r.interfaces !== undefined && !Array.isArray(r.interfaces)) {
    throw fail(plugin, command, 'result field "interfaces" is not a list');
  }
  if (r.routes !== undefined && !Array.isArray(r.routes)) {
    throw fail(plugin, command, 'result field "routes" is not a list');
  }
  const out = structuredClone(r) as unknown as CniResult;
  for (const [i, ip] of (out.ips ?? []).entries()) {
    if (typeof ip?.address !== 'string') throw fail(plugin, command, `result ips[${i}].address is missing`);
  }
  return toVersion(out, target);
}

/** The same result in another shape: 1.x drops ips[].version, 0.3/0.4 require it. */
export function toVersion(result: CniResult, target: string): CniResult {
  const out = structuredClone(result);
  out.cniVersion = target;
  if (out.ips) {
    out.ips = out.ips.map((ip) => {
      const { version: _drop, ...rest } = ip;
      if (isV1(target)) return rest;
      return { ...rest, version: ip.address.includes(':') ? '6' : '4' };
    });
  }
  return out;
}

/**
 * The result in a version tapmanager reads (0.4.0 or 1.x): 1.x stays as it is, 0.3.x
 * becomes 0.4.0 (same shape).
 */
export function forTapwire(result: CniResult): CniResult {
  if (isV1(result.cniVersion) || result.cniVersion === '0.4.0') return structuredClone(result);
  return toVersion(result, '0.4.0');
}
