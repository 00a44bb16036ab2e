// What the domain sides share when they write a libvirt <interface> element: attribute
// quoting, and the element of a NIC whose networking runs in a process (slirp, passt).
// Pure.
import { libvirtModel } from './models';
import type { DomainNic } from './domain-types';

/** s quoted for a single-quoted XML attribute. */
export function xmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The NIC's <alias> line (libvirt's user aliases start with `ua-`), when it has a name. */
export function aliasLines(nic: DomainNic): string[] {
  return nic.name ? [`  <alias name='ua-${xmlAttr(nic.name)}'/>`] : [];
}

/** libvirt's <interface type='user'>, with `backend` (passt's) when given: MAC, model, alias. */
export function userInterface(nic: DomainNic, backend?: string): string {
  return [
    `<interface type='user'>`,
    ...(backend ? [`  <backend type='${xmlAttr(backend)}'/>`] : []),
    `  <mac address='${xmlAttr(nic.mac)}'/>`,
    `  <model type='${xmlAttr(libvirtModel(nic.model))}'/>`,
    ...aliasLines(nic),
    `</interface>`,
  ].join('\n');
}
