// The gRPC server: runtime.v1.RuntimeService (pod-sandbox methods, Version, Status) and
// ImageService on a Unix socket. Every other method answers UNIMPLEMENTED naming itself.
// Errors become statuses in toGrpcStatus() only.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { clearStaleSocket } from '../util/unix-socket';
import type { PodSandboxConfigMsg, PodSandboxFilterMsg } from './convert';
import { toGrpcStatus } from './errors';
import { loadCriServices, runtimeVersion } from './proto';
import { RewritingSocket } from './rewriting-socket';
import type { SandboxService } from './sandboxes';

export const DEFAULT_LISTEN = '/run/tapwire/cri.sock';
export const RUNTIME_NAME = 'tapwire';
export const RUNTIME_API_VERSION = 'v1';

type Handler = (req: Record<string, unknown>) => Promise<Record<string, unknown>>;

export interface CriServerOptions {
  sandboxes: SandboxService;
  logger?: Logger;
}

export class CriServer {
  private readonly server = new grpc.Server();
  private listener: net.Server | undefined;
  private readonly log: Logger;
  private socketPath = '';

  constructor(private readonly o: CriServerOptions) {
    this.log = o.logger ?? silentLogger;
    const { runtime, image } = loadCriServices();
    this.server.addService(runtime, this.implement('runtime.v1.RuntimeService', runtime, this.runtimeHandlers()));
    this.server.addService(image, this.implement('runtime.v1.ImageService', image, this.imageHandlers()));
  }

  private runtimeHandlers(): Record<string, Handler> {
    const sb = this.o.sandboxes;
    return {
      Version: async () => ({
        version: '0.1.0',
        runtime_name: RUNTIME_NAME,
        runtime_version: runtimeVersion(),
        runtime_api_version: RUNTIME_API_VERSION,
      }),
      Status: async () => {
        const net = sb.networkReady();
        return {
          status: {
            conditions: [
              { type: 'RuntimeReady', status: true, reason: '', message: '' },
              { type: 'NetworkReady', status: net.ready, reason: net.reason, message: net.message },
            ],
          },
          info: {},
        };
      },
      RunPodSandbox: async (req) => ({
        pod_sandbox_id: await sb.run(req.config as PodSandboxConfigMsg, String(req.runtime_handler ?? '')),
      }),
      StopPodSandbox: async (req) => {
        await sb.stop(String(req.pod_sandbox_id ?? ''));
        return {};
      },
      RemovePodSandbox: async (req) => {
        await sb.remove(String(req.pod_sandbox_id ?? ''));
        return {};
      },
      PodSandboxStatus: async (req) => {
        const { status, info } = await sb.status(String(req.pod_sandbox_id ?? ''), req.verbose === true);
        return { status, info, containers_statuses: [], timestamp: (BigInt(Date.now()) * 1_000_000n).toString() };
      },
      ListPodSandbox: async (req) => ({ items: sb.list(req.filter as PodSandboxFilterMsg) }),
    };
  }

  /**
   * tapwire-cri keeps no images; it says so where a client asks before anything else
   * (critest checks the image API with ImageFsInfo before every spec).
   */
  private imageHandlers(): Record<string, Handler> {
    return {
      ImageFsInfo: async () => ({ image_filesystems: [], container_filesystems: [] }),
    };
  }

  /** Handlers for every method of a service: ours, or one answering UNIMPLEMENTED. */
  private implement(
    service: string,
    def: grpc.ServiceDefinition,
    handlers: Record<string, Handler>,
  ): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(def)) {
      const full = `${service}/${name}`;
      const h = handlers[name];
      if (h && !method.requestStream && !method.responseStream) {
        impl[name] = (
          call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
          cb: grpc.sendUnaryData<unknown>,
        ) => {
          this.log.debug('call', { method: full, request: call.request });
          h(call.request).then(
            (res) => cb(null, res),
            (e: unknown) => {
              const st = toGrpcStatus(e);
              this.log.warn('call failed', { method: full, code: grpc.status[st.code], error: st.details });
              cb({ code: st.code, details: st.details });
            },
          );
        };
        continue;
      }
      const unimplemented = { code: grpc.status.UNIMPLEMENTED, details: `${full} is not implemented by tapwire-cri` };
      impl[name] = method.responseStream
        ? (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', unimplemented)
        : (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(unimplemented);
    }
    return impl;
  }

  /**
   * Binds the Unix socket (a stale socket file is replaced, a live one or any other file
   * is an error; mode 0600). Connections reach the
   * gRPC server through a RewritingSocket, so clients that send the socket path as :authority
   * (grpc-go before 1.52) are served as well as those that send "localhost".
   */
  async listen(socketPath: string): Promise<void> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    await clearStaleSocket(socketPath); // a stale socket goes; a live one (another tapwire-cri) stops us
    const injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const listener = net.createServer((socket) => injector.injectConnection(new RewritingSocket(socket, this.log)));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (e) => reject(new Error(`failed to listen on "${socketPath}": ${e.message}`)));
      listener.listen(socketPath, () => resolve());
    });
    listener.on('error', (e) => this.log.error('CRI socket error', { error: e.message }));
    this.listener = listener;
    fs.chmodSync(socketPath, 0o600);
    this.socketPath = socketPath;
    this.log.info('listening', { socket: socketPath });
  }

  /** Graceful shutdown, forced after graceMs. */
  async close(graceMs = 5000): Promise<void> {
    this.listener?.close();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      t.unref();
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    if (this.socketPath) fs.rmSync(this.socketPath, { force: true });
  }
}
