// The interface names tapwire takes from a request and puts into netlink messages and
// fence rules: 1-15 bytes (IFNAMSIZ less the NUL) of [A-Za-z0-9_.-], and not "." or ".."
// (the kernel refuses those, dev_valid_name). Narrower than the kernel (which takes any
// byte but '/', ':' and whitespace), so a name can never change the meaning of what it
// is written into.

export const IFNAME_RULE = '1-15 characters of [A-Za-z0-9_.-]';

const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export function isIfname(name: unknown): name is string {
  return typeof name === 'string' && IFNAME_RE.test(name) && name !== '.' && name !== '..';
}
