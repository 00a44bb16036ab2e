// CRI errors and the one function that turns any thrown value into a gRPC status.
import { status as Status } from '@grpc/grpc-js';
import { CniConfigError, CniError } from '../cni/errors';
import { isUnreachable, TapmanagerError } from '../tapmanager/client';

/** An error with the gRPC status it should be answered with. */
export class CriError extends Error {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
    this.name = 'CriError';
  }
}

export const invalidArgument = (m: string): CriError => new CriError(Status.INVALID_ARGUMENT, m);
export const notFound = (m: string): CriError => new CriError(Status.NOT_FOUND, m);

const TAPMANAGER_CODES: Record<string, Status> = {
  EINVAL: Status.INVALID_ARGUMENT,
  EEXIST: Status.ALREADY_EXISTS,
  EACCES: Status.PERMISSION_DENIED,
  ECONNREFUSED: Status.UNAVAILABLE,
  EPIPE: Status.UNAVAILABLE,
  ETIMEDOUT: Status.DEADLINE_EXCEEDED,
};

/** Maps any thrown value to {code, details}: the single place errors become wire statuses. */
export function toGrpcStatus(e: unknown): { code: Status; details: string } {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof CriError) return { code: e.code, details: message };
  if (e instanceof CniError) {
    return { code: e.code === 11 ? Status.UNAVAILABLE : Status.UNKNOWN, details: message };
  }
  if (e instanceof CniConfigError) return { code: Status.FAILED_PRECONDITION, details: message };
  if (e instanceof TapmanagerError) {
    return {
      code: isUnreachable(e) ? Status.UNAVAILABLE : (TAPMANAGER_CODES[e.code] ?? Status.UNKNOWN),
      details: `tapmanager: ${message}`,
    };
  }
  return { code: Status.UNKNOWN, details: message };
}
