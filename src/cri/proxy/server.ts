// tapwire-cri as a CRI proxy: the full runtime.v1 RuntimeService and ImageService on a
// Unix socket, every call forwarded to the backend runtime (passthrough.ts), except the few
// a VM pod needs tapwire in (vm-pods.ts).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../util/log';
import { silentLogger } from '../../util/log';
import { listenUnix, type UnixListener } from '../listen';
import { loadCriServices } from '../proto';
import { backendClient, backendTarget, MAX_MESSAGE_BYTES } from './backend';
import { passthroughImplementation, rawDefinition } from './passthrough';
import { VmPods, type VmPodsOptions } from './vm-pods';

export interface ProxyServerOptions {
  /** --backend: unix:///path or /path */
  backend: string;
  /** VM pods: what they need besides the backend (none: every pod is forwarded untouched) */
  vm?: Omit<VmPodsOptions, 'backend' | 'runtime' | 'logger'>;
  logger?: Logger;
}

export class ProxyServer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
  private readonly backend: grpc.Client;
  private listener: UnixListener | undefined;
  private readonly vmPods: VmPods | undefined;
  private readonly log: Logger;
  readonly target: string;
  private readonly reconcileMs: number;

  constructor(o: ProxyServerOptions) {
    this.log = o.logger ?? silentLogger;
    this.target = backendTarget(o.backend);
    this.reconcileMs = o.vm?.reconcileMs ?? 60_000;
    this.backend = backendClient(this.target);
    const { runtime, image } = loadCriServices();
    this.vmPods = o.vm
      ? new VmPods({ ...o.vm, backend: this.backend, runtime, logger: this.log.child('vm') })
      : undefined;
    const rawRuntime = rawDefinition(runtime);
    const rawImage = rawDefinition(image);
    const own = this.vmPods?.handlers() ?? {};
    this.server.addService(rawRuntime, passthroughImplementation(rawRuntime, this.backend, this.log, own));
    this.server.addService(rawImage, passthroughImplementation(rawImage, this.backend, this.log));
  }

  async listen(socketPath: string): Promise<void> {
    await this.vmPods?.start();
    this.listener = await listenUnix(this.server, socketPath, this.log);
    this.vmPods?.startReconciling(this.reconcileMs);
    this.log.info('forwarding to the backend runtime', { backend: this.target });
  }

  /** Graceful shutdown (calls in flight finish, forced after graceMs), then the backend channel. */
  async close(graceMs = 5000): Promise<void> {
    this.vmPods?.close();
    await this.listener?.close(graceMs);
    this.backend.close();
  }
}
