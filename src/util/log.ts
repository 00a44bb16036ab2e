// Structured JSON logs on stderr, one object per line: {ts, level, component, msg, ...}.
// Debug lines are off unless TAPWIRE_DEBUG names the component (or is "*").
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function debugEnabled(component: string): boolean {
  const v = process.env.TAPWIRE_DEBUG ?? '';
  return v === '*' || v.split(',').some((c) => c === component || component.startsWith(`${c}.`));
}

export function createLogger(component: string, sink: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const debug = debugEnabled(component);
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (level === 'debug' && !debug) return;
    sink(
      `${JSON.stringify({ ts: new Date().toISOString(), level, component, msg, ...fields }, (_k, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v,
      )}\n`,
    );
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (c) => createLogger(`${component}.${c}`, sink),
  };
}

/** A logger that drops everything (library default). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
