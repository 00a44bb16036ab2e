// The gRPC server: runtime.v1.RuntimeService (pod-sandbox methods, Version, Status) and
// ImageService on a Unix socket. Every other method answers UNIMPLEMENTED naming itself.
// Errors become statuses in toGrpcStatus() only.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import type { PodSandboxConfigMsg, PodSandboxFilterMsg } from './convert';
import { toGrpcStatus } from './errors';
import { listenUnix, type UnixListener } from './listen';
import { loadCriServices, runtimeVersion } from './proto';
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
  private listener: UnixListener | undefined;
  private readonly log: Logger;

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

  /** Serves on the Unix socket (see listen.ts). */
  async listen(socketPath: string): Promise<void> {
    this.listener = await listenUnix(this.server, socketPath, this.log);
  }

  /** Graceful shutdown, forced after graceMs. */
  async close(graceMs = 5000): Promise<void> {
    await this.listener?.close(graceMs);
  }
}
