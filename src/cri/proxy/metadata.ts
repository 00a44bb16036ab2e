// Which gRPC metadata the proxy passes on. Everything a peer sent is forwarded except the
// headers that describe one HTTP/2 hop (content type, compression, the user agent; the
// deadline travels as the backend call's own deadline), which each side's gRPC library
// sets for itself. Forwarding them would be wrong (a grpc-encoding of the backend's hop
// does not describe ours) or ignored.
import { Metadata } from '@grpc/grpc-js';

const HOP_HEADERS = new Set([
  'content-type',
  'content-length',
  'te',
  'user-agent',
  'host',
  'accept-encoding',
  'grpc-timeout',
  'grpc-encoding',
  'grpc-accept-encoding',
  'grpc-status',
  'grpc-message',
]);

/** A copy of md without the per-hop headers. */
export function endToEnd(md: Metadata): Metadata {
  const out = new Metadata();
  for (const key of Object.keys(md.getMap())) {
    if (HOP_HEADERS.has(key)) continue;
    for (const v of md.get(key)) out.add(key, v); // every value, not getMap()'s first
  }
  return out;
}
