// The typed DHCPv6 option classes, and which class decodes which code (for printing).
import { Opt6 } from '../constants';
import { DomainListOption } from './domain-list';
import { DuidOption } from './duid';
import { IaOption, IaTaOption } from './ia';
import { Ip6ListOption, OroOption } from './lists';
import type { Option6Type, Option6Value } from './option';
import { EmptyOption, Uint16Option6, Uint32Option6, Uint8Option6 } from './scalar';
import { StatusCodeOption } from './status-code';

export { DomainListOption, readNames, writeNames } from './domain-list';
export { DuidOption } from './duid';
export { IaAddrOption, IaOption, IaTaOption } from './ia';
export { Ip6ListOption, OroOption } from './lists';
export type { Option6Type, Option6Value } from './option';
export { EmptyOption, OpaqueOption6, Uint16Option6, Uint32Option6, Uint8Option6, UintOption } from './scalar';
export { StatusCodeOption } from './status-code';
export type { RawOption } from './wire';

/** Name and type per code, for toString() and the fuzz; codes not listed print as hex. */
export const OPTION6_TYPES: Record<number, [string, Option6Type<Option6Value>]> = {
  [Opt6.CLIENTID]: ['client-id', DuidOption],
  [Opt6.SERVERID]: ['server-id', DuidOption],
  [Opt6.IA_NA]: ['ia-na', IaOption],
  [Opt6.IA_TA]: ['ia-ta', IaTaOption],
  [Opt6.IA_PD]: ['ia-pd', IaOption],
  [Opt6.ORO]: ['oro', OroOption],
  [Opt6.PREFERENCE]: ['preference', Uint8Option6],
  [Opt6.ELAPSED_TIME]: ['elapsed-time', Uint16Option6],
  [Opt6.STATUS_CODE]: ['status', StatusCodeOption],
  [Opt6.RAPID_COMMIT]: ['rapid-commit', EmptyOption],
  [Opt6.RECONF_ACCEPT]: ['reconf-accept', EmptyOption],
  [Opt6.DNS_SERVERS]: ['dns-servers', Ip6ListOption],
  [Opt6.DOMAIN_LIST]: ['domain-list', DomainListOption],
  [Opt6.INFORMATION_REFRESH_TIME]: ['information-refresh-time', Uint32Option6],
  [Opt6.SOL_MAX_RT]: ['sol-max-rt', Uint32Option6],
  [Opt6.INF_MAX_RT]: ['inf-max-rt', Uint32Option6],
};
