// A pod's hostname from its name, as the kubelet derives it (truncatePodHostnameIfNeeded):
// the name as it is up to 63 bytes (HOST_NAME_MAX 64 less the NUL); a longer one cut to 63
// with trailing '-' and '.' trimmed. A name of 63 bytes or fewer is never changed, so one
// that is no hostname as given (e.g. ends in '-') stays one and is refused where it is
// checked. tapmanager (the guest's DHCP hostname) and tapwire-cri (the sandbox's) both use
// this rule.

export const HOSTNAME_MAX = 63;

export function podHostname(podName: string): string {
  if (Buffer.byteLength(podName) <= HOSTNAME_MAX) return podName;
  return Buffer.from(podName)
    .subarray(0, HOSTNAME_MAX)
    .toString('latin1')
    .replace(/[-.]+$/, '');
}
