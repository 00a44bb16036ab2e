// A CRI RuntimeService client built from the vendored official proto (runtime.v1), as a
// kubelet would use it: camelCase fields, promisified unary calls.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from '../cri/proto';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Reply = Record<string, any>;
export type RuntimeCalls = Record<string, (req: object) => Promise<Reply>>;

export interface RuntimeClient {
  rt: RuntimeCalls;
  close(): void;
}

export function runtimeClient(socketPath: string): RuntimeClient {
  const def = protoLoader.loadSync(protoPath(), { keepCase: false, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: { RuntimeService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } };
  };
  const client = new pkg.runtime.v1.RuntimeService(`unix://${socketPath}`, grpc.credentials.createInsecure());
  const rt = new Proxy({} as RuntimeCalls, {
    get: (_t, name: string) => (req: object) =>
      new Promise<Reply>((resolve, reject) => {
        const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
        if (!fn) return reject(new Error(`no CRI method ${name}`));
        fn.call(client, req, { deadline: Date.now() + 60_000 }, (err: grpc.ServiceError | null, res: Reply) =>
          err ? reject(new Error(`${name}: ${err.details || err.message}`)) : resolve(res),
        );
      }),
  });
  return { rt, close: () => client.close() };
}
