// tapmanager's Prometheus metrics: what main.ts and the server import.
export { isWildcard, parseMetricsAddress, type MetricsAddress } from './address';
export { serveMetrics } from './http';
export { errnoLabel, TapwireMetrics, type SandboxSource } from './registry';
