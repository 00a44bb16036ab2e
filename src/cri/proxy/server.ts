// tapwire-cri as a CRI proxy: the full runtime.v1 RuntimeService and ImageService on a
// Unix socket, every call forwarded to the backend runtime (passthrough.ts).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../util/log';
import { silentLogger } from '../../util/log';
import { listenUnix, type UnixListener } from '../listen';
import { loadCriServices } from '../proto';
import { backendClient, backendTarget, MAX_MESSAGE_BYTES } from './backend';
import { passthroughImplementation, rawDefinition } from './passthrough';

export interface ProxyServerOptions {
  /** --backend: unix:///path or /path */
  backend: string;
  logger?: Logger;
}

export class ProxyServer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
  private readonly backend: grpc.Client;
  private listener: UnixListener | undefined;
  private readonly log: Logger;
  readonly target: string;

  constructor(o: ProxyServerOptions) {
    this.log = o.logger ?? silentLogger;
    this.target = backendTarget(o.backend);
    this.backend = backendClient(this.target);
    const { runtime, image } = loadCriServices();
    for (const def of [runtime, image]) {
      const rawDef = rawDefinition(def);
      this.server.addService(rawDef, passthroughImplementation(rawDef, this.backend, this.log));
    }
  }

  async listen(socketPath: string): Promise<void> {
    this.listener = await listenUnix(this.server, socketPath, this.log);
    this.log.info('forwarding to the backend runtime', { backend: this.target });
  }

  /** Graceful shutdown (calls in flight finish, forced after graceMs), then the backend channel. */
  async close(graceMs = 5000): Promise<void> {
    await this.listener?.close(graceMs);
    this.backend.close();
  }
}
