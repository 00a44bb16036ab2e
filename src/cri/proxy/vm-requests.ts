// What the proxy changes in the calls of VM pods, on the wire (wire.ts), so everything else
// in them reaches the runtime as the kubelet sent it:
//  - RunPodSandbox: a VM pod is asked for by the RuntimeClass handler (`tapwire`) or, for
//    clusters without RuntimeClasses, an annotation (`tapwire.io/vm: "true"`). The backend
//    gets its own handler instead (its default, or e.g. `runc`) and the sandbox carries the
//    annotation `tapwire.io/vm-pod: "true"` (the backend's records show which of its pods the
//    proxy made VM pods). Only the proxy writes that mark: a request that carries it, VM pod
//    or not, is refused. The proxy knows its VM pods from its own records (vm-store.ts).
//  - CreateContainer in a VM pod: TAPWIRE_NET_KEY and TAPWIRE_FD_SOCKET in the environment,
//    after the kubelet's (a later value wins), and the fd socket's directory mounted
//    read-only at the same path.
//  - PodSandboxStatus of a VM pod: tapwire's view added to the verbose info under `tapwire`.
import { CriError } from '../errors';
import { status as Status } from '@grpc/grpc-js';
import * as path from 'node:path';
import {
  embedded,
  lenField,
  mapEntry,
  readFields,
  replaceField,
  stringField,
  WIRE,
  WireError,
  withEmbedded,
} from './wire';

export interface VmSelector {
  /** the RuntimeClass handler of VM pods */
  handler: string;
  /** the annotation that makes a pod a VM pod with the value "true" ('' for none) */
  annotation: string;
  /** the backend's handler VM pods run with ('' is its default) */
  backendHandler: string;
}

export const DEFAULT_VM_SELECTOR: VmSelector = { handler: 'tapwire', annotation: 'tapwire.io/vm', backendHandler: '' };
/** The annotation the proxy puts on a VM pod's sandbox in the backend. */
export const VM_POD_MARK = 'tapwire.io/vm-pod';
/**
 * The annotations only the proxy writes: a RunPodSandbox that carries one is refused (any
 * user can write annotations; the backend's mark must mean the proxy made a VM pod there).
 */
export const RESERVED_ANNOTATIONS: readonly string[] = [VM_POD_MARK];
export const NET_KEY_ENV = 'TAPWIRE_NET_KEY';
export const FD_SOCKET_ENV = 'TAPWIRE_FD_SOCKET';

// field numbers, runtime.v1 (vendor/cri-api/api.proto)
const RUN = { config: 1, runtimeHandler: 2 };
const POD_CONFIG = { annotations: 7 };
const CREATE = { config: 2 };
const CONTAINER_CONFIG = { envs: 6, mounts: 7 };
const KEY_VALUE = { key: 1, value: 2 };
const MOUNT = { containerPath: 1, hostPath: 2, readonly: 3 };
const STATUS_RESPONSE = { info: 2 };

function badRequest(what: string, e: unknown): CriError {
  const why = e instanceof WireError ? e.message : String(e);
  return new CriError(Status.INVALID_ARGUMENT, `malformed ${what}: ${why}`);
}

/** The string entries of a map<string,string> field of an encoded message. */
function mapField(msg: Buffer, field: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readFields(msg)) {
    if (f.field !== field || f.wireType !== WIRE.LEN) continue;
    let key = '';
    let value = '';
    for (const e of readFields(f.payload!)) {
      if (e.wireType !== WIRE.LEN) continue;
      if (e.field === 1) key = e.payload!.toString('utf8');
      else if (e.field === 2) value = e.payload!.toString('utf8');
    }
    out.set(key, value); // a later entry wins, as in every protobuf parser
  }
  return out;
}

/** The last value of a string field. */
function stringOf(msg: Buffer, field: number): string {
  let v = '';
  for (const f of readFields(msg)) if (f.field === field && f.wireType === WIRE.LEN) v = f.payload!.toString('utf8');
  return v;
}

export interface RunRequestView {
  vm: boolean;
  handler: string;
  annotations: Map<string, string>;
}

/** What a RunPodSandboxRequest asks for; INVALID_ARGUMENT when it is not a protobuf message. */
export function readRunRequest(raw: Buffer, sel: VmSelector): RunRequestView {
  try {
    const handler = stringOf(raw, RUN.runtimeHandler);
    const annotations = mapField(embedded(raw, RUN.config), POD_CONFIG.annotations);
    const byAnnotation = sel.annotation !== '' && annotations.get(sel.annotation) === 'true';
    return { vm: handler === sel.handler || byAnnotation, handler, annotations };
  } catch (e) {
    throw badRequest('RunPodSandboxRequest', e);
  }
}

/** INVALID_ARGUMENT when a RunPodSandboxRequest carries an annotation only the proxy may set. */
export function refuseReservedAnnotations(view: RunRequestView): void {
  for (const key of RESERVED_ANNOTATIONS) {
    const value = view.annotations.get(key);
    if (value === undefined) continue;
    throw new CriError(
      Status.INVALID_ARGUMENT,
      `config.annotations[${JSON.stringify(key)}] = ${JSON.stringify(value)}: this annotation is reserved for ` +
        'tapwire-cri (it marks the sandboxes it made for VM pods); ask for a VM pod by its runtime handler or annotation',
    );
  }
}

/** The RunPodSandboxRequest the backend gets for a VM pod. */
export function backendRunRequest(raw: Buffer, sel: VmSelector): Buffer {
  try {
    const marked = withEmbedded(raw, RUN.config, (cfg) =>
      Buffer.concat([cfg, mapEntry(POD_CONFIG.annotations, VM_POD_MARK, 'true')]),
    );
    return replaceField(marked, RUN.runtimeHandler, stringField(RUN.runtimeHandler, sel.backendHandler));
  } catch (e) {
    throw badRequest('RunPodSandboxRequest', e);
  }
}

/** Whether a sandbox's annotations (as the backend reports them) mark a VM pod. */
export function isMarkedVmPod(annotations: Record<string, string> | undefined | null): boolean {
  return annotations?.[VM_POD_MARK] === 'true';
}

/** The pod sandbox id a CreateContainerRequest names. */
export function createRequestSandbox(raw: Buffer): string {
  try {
    return stringOf(raw, 1);
  } catch (e) {
    throw badRequest('CreateContainerRequest', e);
  }
}

/** A CreateContainerRequest of a VM pod: the network key and the fd socket for vmwrapper. */
export function vmContainerRequest(raw: Buffer, netKey: string, fdSocket: string): Buffer {
  const dir = path.dirname(fdSocket);
  const env = (k: string, v: string): Buffer =>
    lenField(CONTAINER_CONFIG.envs, Buffer.concat([stringField(KEY_VALUE.key, k), stringField(KEY_VALUE.value, v)]));
  const mount = lenField(
    CONTAINER_CONFIG.mounts,
    Buffer.concat([
      stringField(MOUNT.containerPath, dir),
      stringField(MOUNT.hostPath, dir),
      Buffer.from([MOUNT.readonly * 8 + WIRE.VARINT, 1]),
    ]),
  );
  try {
    return withEmbedded(raw, CREATE.config, (cfg) =>
      Buffer.concat([cfg, env(NET_KEY_ENV, netKey), env(FD_SOCKET_ENV, fdSocket), mount]),
    );
  } catch (e) {
    throw badRequest('CreateContainerRequest', e);
  }
}

/** A PodSandboxStatusResponse with tapwire's JSON added to its info under `tapwire`. */
export function withTapwireInfo(rawResponse: Buffer, info: unknown): Buffer {
  return Buffer.concat([rawResponse, mapEntry(STATUS_RESPONSE.info, 'tapwire', JSON.stringify(info))]);
}
