// Checks every name and MAC that goes into a fence script, so nothing a caller passes can
// change the script's meaning: interface names are 1-15 bytes of [A-Za-z0-9_.-], the
// table is an nft identifier, MACs are six hex pairs. Errors name the field and value.
import { IFNAME_RULE, isIfname } from '../../net/ifname';
import { isUnicastMac, parseMac } from '../../net/mac';
import { badInput } from '../errors';
import type { FenceNic } from './types';

const TABLE_RE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

export function checkTable(table: unknown): string {
  if (typeof table !== 'string' || !TABLE_RE.test(table)) {
    throw badInput('table', table, 'must be 1-32 characters of [A-Za-z0-9_], starting with a letter');
  }
  return table;
}

export function checkIfname(field: string, name: unknown): string {
  if (!isIfname(name)) throw badInput(field, name, `must be an interface name of ${IFNAME_RULE}`);
  return name;
}

/** A unicast MAC, returned lower-case. */
export function checkMac(field: string, mac: unknown): string {
  const m = parseMac(mac);
  if (m === undefined) throw badInput(field, mac, 'must be a MAC address like 52:54:00:12:34:56');
  if (!isUnicastMac(m)) {
    throw badInput(
      field,
      mac,
      m === '00:00:00:00:00:00' ? 'must not be all zeros' : 'must be a unicast MAC (group bit clear)',
    );
  }
  return m;
}

/** The NICs, checked and normalized; names may not repeat across NICs. */
export function checkNics(nics: unknown): FenceNic[] {
  if (!Array.isArray(nics)) throw badInput('nics', nics, 'must be an array');
  const seen = new Map<string, string>();
  return nics.map((n: unknown, i) => {
    if (typeof n !== 'object' || n === null) throw badInput(`nics[${i}]`, n, 'must be an object');
    const r = n as Record<string, unknown>;
    const nic: FenceNic = {
      bridge: checkIfname(`nics[${i}].bridge`, r.bridge),
      veth: checkIfname(`nics[${i}].veth`, r.veth),
      tap: checkIfname(`nics[${i}].tap`, r.tap),
      guestMac: checkMac(`nics[${i}].guestMac`, r.guestMac),
    };
    for (const field of ['veth', 'tap'] as const) {
      const other = seen.get(nic[field]);
      if (other !== undefined) throw badInput(`nics[${i}].${field}`, nic[field], `already used as ${other}`);
      seen.set(nic[field], `nics[${i}].${field}`);
    }
    if (nic.bridge === nic.veth || nic.bridge === nic.tap) {
      throw badInput(`nics[${i}].bridge`, nic.bridge, 'must differ from the veth and the tap');
    }
    return nic;
  });
}
