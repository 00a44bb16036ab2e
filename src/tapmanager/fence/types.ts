// The shapes the fence module takes and returns.

/** One guest NIC: the pod veth and the guest tap, both ports of `bridge`. */
export interface FenceNic {
  bridge: string;
  veth: string;
  tap: string;
  guestMac: string;
}

/** One rule's counter, by its stable name (see ruleset.ts for the naming scheme). */
export interface FenceCounter {
  name: string;
  packets: number;
  bytes: number;
}
