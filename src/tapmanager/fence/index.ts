// The DHCP fence and anti-spoofing of a pod sandbox (see ruleset.ts for the policy):
// what tapmanager imports.
export { applyFence, fenceExists, readFenceCounters, removeFence } from './apply';
export { readFenceCountersEach, type FenceToRead } from './counters';
export { fenceCounterNames, fenceRuleset } from './ruleset';
export type { FenceCounter, FenceNic } from './types';
