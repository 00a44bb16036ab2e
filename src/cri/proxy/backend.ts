// The proxy's connection to the CRI runtime behind it (containerd's socket): one grpc-js
// channel for both services, carrying raw message bytes.
import * as grpc from '@grpc/grpc-js';

/** containerd's own limit on the messages it receives, and the kubelet's on what it receives. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * A gRPC target for --backend: unix:///abs/path (as kubelets spell endpoints) or an absolute
 * path. Anything else is refused, naming the value.
 */
export function backendTarget(value: string): string {
  const p = value.startsWith('unix://') ? value.slice('unix://'.length) : value;
  if (!p.startsWith('/') || p.includes('\0')) {
    throw new Error(`--backend: want unix:///absolute/path.sock or /absolute/path.sock, got "${value}"`);
  }
  return `unix://${p}`;
}

export function backendClient(target: string): grpc.Client {
  return new grpc.Client(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    // a restarted runtime is found again within a second or two, not after grpc's 2-minute backoff
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
  });
}
