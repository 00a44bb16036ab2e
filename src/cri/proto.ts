// Loads the vendored official CRI proto (vendor/cri-api/api.proto, runtime.v1) with
// @grpc/proto-loader. keepCase keeps the proto's own snake_case field names; the wire
// format is the same whichever case a peer's loader uses.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The repository root (holding vendor/cri-api), from src/cri or dist/src/cri. */
export function repoRoot(): string {
  const tried: string[] = [];
  for (const up of [
    ['..', '..'],
    ['..', '..', '..'],
  ]) {
    const root = path.resolve(__dirname, ...up);
    if (fs.existsSync(path.join(root, 'vendor', 'cri-api', 'api.proto'))) return root;
    tried.push(root);
  }
  throw new Error(`cannot find vendor/cri-api/api.proto under ${tried.join(' or ')}`);
}

export function protoPath(): string {
  return path.join(repoRoot(), 'vendor', 'cri-api', 'api.proto');
}

/** tapwire's version from package.json. */
export function runtimeVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export interface CriServices {
  runtime: grpc.ServiceDefinition;
  image: grpc.ServiceDefinition;
}

export function loadCriServices(file = protoPath()): CriServices {
  const def = protoLoader.loadSync(file, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: Record<string, { service: grpc.ServiceDefinition }> };
  };
  const v1 = pkg.runtime.v1;
  return { runtime: v1.RuntimeService!.service, image: v1.ImageService!.service };
}
