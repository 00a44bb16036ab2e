// The guest's hostname (DHCP option 12) for a pod sandbox, derived as the kubelet derives a
// pod's hostname: config.hostname when given, else the pod name; longer than 63 bytes (the
// kubelet's cap: HOST_NAME_MAX 64 less the NUL) it is cut to 63 and trailing '-' and '.' are
// trimmed (kubelet truncatePodHostnameIfNeeded). Dots stay, as with the kubelet: a pod name is
// a DNS subdomain and becomes the hostname as it is. Every valid pod name therefore yields a
// valid hostname; only a name no Kubernetes pod can have (spaces, '_', ...) is refused.
import { isDnsName } from '../net/dns-name';
import { HOSTNAME_MAX, podHostname as podHostnameOf } from '../net/pod-hostname';
import { invalidArgument } from './errors';

export { HOSTNAME_MAX };

/** The kubelet's truncation: at most 63 bytes, no trailing '-' or '.' (net/pod-hostname.ts). */
export const truncateHostname = podHostnameOf;

export function isHostname(name: string): boolean {
  return isDnsName(name, { maxLength: HOSTNAME_MAX });
}

/** The hostname for a sandbox; errors name the field it came from and the value. */
export function podHostname(hostname: string | undefined, podName: string): string {
  const field = hostname ? 'config.hostname' : 'config.metadata.name';
  const given = hostname || podName;
  const h = truncateHostname(given);
  if (!isHostname(h)) {
    throw invalidArgument(
      `${field} ${JSON.stringify(given)} cannot be the guest hostname: a hostname is labels of letters, digits ` +
        `and inner "-" joined by ".", at most ${HOSTNAME_MAX} bytes` +
        (hostname ? '' : ' (set config.hostname to give one)'),
    );
  }
  return h;
}
