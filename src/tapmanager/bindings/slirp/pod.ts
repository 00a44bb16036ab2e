// The slirp binding, pod side: nothing to build. QEMU's user networking runs inside the
// emulator in the pod netns (domain.ts); the daemon only records the NIC in spec order,
// with the pod interface's IPv4 address its listed ports are forwarded from, and hands
// vmwrapper no fd for it. No links, no DHCP server (slirp has its own), no fence.
import { badInput } from '../../errors';
import { readVethSnapshot } from '../../plan/read-veth';
import type { GuestNic } from '../../protocol';
import { noDhcpNoFence, portForwards, routelessStatus, userModeGuestNic, userModeNic } from '../common';
import { fdsEntry } from '../tap-hand-out';
import type { PodBinding } from '../types';

/** slirp's own network: the guest gets .15, slirp answers as .2 (QEMU's defaults). */
export const SLIRP_GUEST = { ip: '10.0.2.15', prefixLen: 24, gateway: '10.0.2.2' };

export const slirpPod: PodBinding = {
  name: 'slirp',

  async plan(ctx, spec) {
    if (spec.queues > 1)
      throw badInput(spec.field.replace(/podInterface$/, 'queues'), spec.queues, 'slirp has one queue');
    const snap = await readVethSnapshot(ctx.nsPath, spec.podInterface).catch((e: unknown) => {
      throw badInput(spec.field, spec.podInterface, `not found in netns ${ctx.netnsPath} (${(e as Error).message})`);
    });
    const v4 = snap.addrs.find((a) => a.family === 4);
    if (!v4) throw badInput(spec.field, spec.podInterface, 'has no IPv4 address to forward the ports from');
    return {
      ...userModeNic(spec, snap),
      binding: 'slirp',
      slirp: { podIp: v4.address },
      ...(spec.ports ? { ports: spec.ports } : {}),
    };
  },

  async apply() {},

  async undo() {
    return [];
  },

  async check(ctx, nic) {
    return ctx.links.some((l) => l.name === nic.veth.ifname) ? [] : [`pod interface ${nic.veth.ifname} missing`];
  },

  describe(n): GuestNic {
    return {
      ...userModeGuestNic(n, 'slirp'),
      ip: SLIRP_GUEST.ip,
      prefixLen: SLIRP_GUEST.prefixLen,
      gateway: SLIRP_GUEST.gateway,
      slirp: { podIp: n.slirp!.podIp, forwards: portForwards(n.ports, n.slirp!.podIp) },
    };
  },

  status(n) {
    return routelessStatus(this.describe(n), []);
  },

  ...noDhcpNoFence,

  madeLinks() {
    return [];
  },

  // no device and no fd: the emulator makes the NIC itself, with the forwards the entry names
  handOut: {
    checkNotHeld: async () => undefined,
    open: () => [],
    revoke: async () => [],
    entry: (n) => ({
      ...fdsEntry(n),
      hostfwd: {
        ip: n.slirp!.podIp,
        ports: (n.ports ?? []).map((p) => ({
          protocol: p.protocol,
          port: p.port,
          ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
        })),
      },
    }),
  },
};
