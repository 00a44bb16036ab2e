// Reads a systemd unit as systemd would for starting it: the [Service] settings, the
// EnvironmentFile's variables, and ExecStart= split into argv with $VAR (split on
// whitespace) and ${VAR} (one word) replaced (systemd.service(5), "Command lines").
import * as fs from 'node:fs';

export type UnitFile = Record<string, Record<string, string[]>>;

export function parseUnit(text: string): UnitFile {
  const unit: UnitFile = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    (unit[section]![key] ??= []).push(line.slice(eq + 1).trim());
  }
  return unit;
}

/** KEY=VALUE lines of an EnvironmentFile (comments and blank lines skipped; no quotes used here). */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return env;
}

/** ExecStart's argv: words split on whitespace, "$VAR" split again, "${VAR}" kept whole. */
export function execArgv(execStart: string, env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const word of execStart
    .replace(/^[-@:+!]+/, '')
    .split(/\s+/)
    .filter(Boolean)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) out.push(...(env[whole[1]!] ?? '').split(/\s+/).filter(Boolean));
    else out.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k: string) => env[k] ?? ''));
  }
  return out;
}

export function readUnit(file: string): UnitFile {
  return parseUnit(fs.readFileSync(file, 'utf8'));
}
