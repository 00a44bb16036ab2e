// The typed option classes, and which class decodes which code (for printing packets).
import { Opt } from '../constants';
import { ClasslessRoutesOption } from './classless-routes';
import { DomainSearchOption } from './domain-search';
import { IpListOption, IpOption } from './ip';
import { MessageTypeOption } from './message-type';
import { OpaqueOption } from './opaque';
import type { OptionType, OptionValue } from './option';
import { ParameterListOption } from './parameter-list';
import { TextOption } from './text';
import { DurationOption, Uint16Option, Uint8Option } from './uint';

export { ClasslessRoutesOption, type ClasslessRoute } from './classless-routes';
export { DomainSearchOption } from './domain-search';
export { IpListOption, IpOption } from './ip';
export { MessageTypeOption } from './message-type';
export { OpaqueOption } from './opaque';
export type { OptionType, OptionValue } from './option';
export { ParameterListOption } from './parameter-list';
export { TextOption } from './text';
export { DurationOption, Uint16Option, Uint8Option } from './uint';

/** Name and type per code, for toString(); codes not listed print as hex. */
export const OPTION_TYPES: Record<number, [string, OptionType<OptionValue>]> = {
  [Opt.SUBNET_MASK]: ['subnet-mask', IpOption],
  [Opt.ROUTER]: ['router', IpListOption],
  [Opt.DNS]: ['dns', IpListOption],
  [Opt.HOSTNAME]: ['hostname', TextOption],
  [Opt.DOMAIN_NAME]: ['domain-name', TextOption],
  [Opt.INTERFACE_MTU]: ['mtu', Uint16Option],
  [Opt.BROADCAST_ADDRESS]: ['broadcast', IpOption],
  [Opt.NTP_SERVERS]: ['ntp-servers', IpListOption],
  [Opt.REQUESTED_IP]: ['requested-ip', IpOption],
  [Opt.LEASE_TIME]: ['lease-time', DurationOption],
  [Opt.OVERLOAD]: ['overload', Uint8Option],
  [Opt.MESSAGE_TYPE]: ['message-type', MessageTypeOption],
  [Opt.SERVER_ID]: ['server-id', IpOption],
  [Opt.PARAMETER_REQUEST_LIST]: ['parameter-request-list', ParameterListOption],
  [Opt.MESSAGE]: ['message', TextOption],
  [Opt.MAX_MESSAGE_SIZE]: ['max-message-size', Uint16Option],
  [Opt.RENEWAL_TIME]: ['renewal-time', DurationOption],
  [Opt.REBINDING_TIME]: ['rebinding-time', DurationOption],
  [Opt.VENDOR_CLASS]: ['vendor-class', TextOption],
  [Opt.CLIENT_ID]: ['client-id', OpaqueOption],
  [Opt.TFTP_SERVER_NAME]: ['tftp-server-name', TextOption],
  [Opt.BOOTFILE_NAME]: ['bootfile-name', TextOption],
  [Opt.RELAY_AGENT_INFO]: ['relay-agent-info', OpaqueOption],
  [Opt.DOMAIN_SEARCH]: ['domain-search', DomainSearchOption],
  [Opt.CLASSLESS_ROUTES]: ['classless-routes', ClasslessRoutesOption],
};
