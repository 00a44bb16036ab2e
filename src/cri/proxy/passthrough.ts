// Forwarding CRI calls to the backend without decoding them. The service definitions come
// from the vendored proto (method paths and which side streams), but every message is
// carried as its raw bytes (identity serializers), so fields this proxy's proto does not know
// reach the other side unchanged. Per call: the request metadata (end to end, see
// metadata.ts), the deadline and cancellation (the backend call is a child of the incoming
// one); back: the response headers, the message(s), the status code, details and trailers
// (grpc-status-details-bin included) exactly as the backend sent them.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../util/log';
import { endToEnd } from './metadata';

const raw = (b: Buffer): Buffer => b;

/** A definition of the same methods carrying raw bytes. */
export function rawDefinition(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      path: m.path,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      originalName: m.originalName,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    };
  }
  return out;
}

function errorFrom(status: grpc.StatusObject): grpc.ServerErrorResponse {
  return Object.assign(new Error(status.details), {
    code: status.code,
    details: status.details,
    metadata: endToEnd(status.metadata),
  });
}

/** The backend's answer to a call the proxy makes itself, when it is not OK. */
export class BackendStatusError extends Error {
  constructor(
    readonly path: string,
    readonly status: grpc.StatusObject,
  ) {
    super(`${path}: ${grpc.status[status.code]}: ${status.details}`);
    this.name = 'BackendStatusError';
  }

  /** The error to answer the client with: the backend's, exactly. */
  toServerError(): grpc.ServerErrorResponse {
    return errorFrom(this.status);
  }
}

/**
 * A unary call of the proxy's own to the backend (raw bytes); the response and trailers, or
 * a BackendStatusError. With a parent, the parent's deadline and cancellation apply.
 */
export function backendUnary(
  backend: grpc.Client,
  path: string,
  request: Buffer,
  o: { metadata?: grpc.Metadata; parent?: grpc.ServerUnaryCall<Buffer, Buffer>; deadline?: number } = {},
): Promise<{ response: Buffer; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let response: Buffer | undefined;
    const options: grpc.CallOptions = {};
    if (o.parent) options.parent = o.parent;
    if (o.deadline !== undefined) options.deadline = o.deadline;
    const up = backend.makeUnaryRequest(
      path,
      raw,
      raw,
      request,
      o.metadata ?? new grpc.Metadata(),
      options,
      (_e, r) => {
        response = r;
      },
    );
    up.on('status', (st: grpc.StatusObject) => {
      if (st.code === grpc.status.OK && response !== undefined) resolve({ response, trailers: st.metadata });
      else if (st.code === grpc.status.OK) {
        reject(new BackendStatusError(path, { ...st, code: grpc.status.UNIMPLEMENTED, details: 'no message' }));
      } else reject(new BackendStatusError(path, st));
    });
  });
}

export type UnaryHandler = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => void;
export type StreamHandler = (call: grpc.ServerWritableStream<Buffer, Buffer>) => void;

/**
 * Sends `request` (raw bytes) to the backend as a child of `call`, and answers `callback`
 * with exactly what the backend answered.
 */
export function forwardUnary(
  backend: grpc.Client,
  path: string,
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
  request: Buffer,
  callback: grpc.sendUnaryData<Buffer>,
): void {
  let response: Buffer | undefined;
  const up = backend.makeUnaryRequest(
    path,
    raw,
    raw,
    request,
    endToEnd(call.metadata),
    { parent: call },
    (_err, res) => (response = res),
  );
  up.on('metadata', (md: grpc.Metadata) => call.sendMetadata(endToEnd(md)));
  // 'status' follows the callback and carries the trailers
  up.on('status', (st: grpc.StatusObject) => {
    if (st.code === grpc.status.OK && response !== undefined) callback(null, response, endToEnd(st.metadata));
    else if (st.code === grpc.status.OK) {
      callback(errorFrom({ ...st, code: grpc.status.UNIMPLEMENTED, details: `${path}: the runtime sent no message` }));
    } else callback(errorFrom(st));
  });
}

/** Server streaming: the backend's messages as they come, with backpressure, then its status. */
export function forwardServerStream(
  backend: grpc.Client,
  path: string,
  call: grpc.ServerWritableStream<Buffer, Buffer>,
): void {
  const up = backend.makeServerStreamRequest(path, raw, raw, call.request, endToEnd(call.metadata), {
    parent: call,
  });
  let status: grpc.StatusObject | undefined;
  let ended = false;
  const finish = (): void => {
    if (!status || !ended) return;
    if (status.code === grpc.status.OK) call.end(endToEnd(status.metadata));
    else call.emit('error', errorFrom(status));
  };
  up.on('metadata', (md: grpc.Metadata) => call.sendMetadata(endToEnd(md)));
  up.on('data', (b: Buffer) => {
    if (!call.write(b)) {
      up.pause();
      call.once('drain', () => up.resume());
    }
  });
  up.on('error', () => {}); // the status says it
  up.on('status', (st: grpc.StatusObject) => {
    status = st;
    finish();
  });
  // the status can come while messages are still buffered: end only after the last one
  const done = (): void => {
    ended = true;
    finish();
  };
  up.on('end', done);
  up.on('close', done);
}

/**
 * Handlers forwarding every method of `def` to the backend; `own` replaces some (by method
 * name) for calls the proxy takes part in. Client-streaming methods (none in CRI v1) answer
 * UNIMPLEMENTED naming themselves.
 */
export function passthroughImplementation(
  def: grpc.ServiceDefinition,
  backend: grpc.Client,
  log: Logger,
  own: Record<string, UnaryHandler | StreamHandler> = {},
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, m] of Object.entries(def)) {
    const mine = own[name];
    if (mine) impl[name] = mine;
    else if (m.requestStream) {
      impl[name] = (call: grpc.ServerDuplexStream<Buffer, Buffer>) =>
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${m.path} is not forwarded by tapwire-cri` });
    } else if (m.responseStream) {
      impl[name] = (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        log.debug('forward stream', { method: m.path });
        forwardServerStream(backend, m.path, call);
      };
    } else {
      impl[name] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        log.debug('forward', { method: m.path });
        forwardUnary(backend, m.path, call, call.request, cb);
      };
    }
  }
  return impl;
}
