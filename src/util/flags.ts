// A small flag parser: --name value, --name=value, repeatable flags collect into
// arrays, --help prints the documented flags. Unknown flags are errors naming them.
export interface FlagSpec {
  name: string;
  help: string;
  default?: string;
  repeat?: boolean;
  boolean?: boolean;
}

export type Flags = Record<string, string | string[] | boolean | undefined>;

export function usage(prog: string, specs: FlagSpec[]): string {
  const lines = specs.map((s) => {
    const dflt = s.default !== undefined ? ` (default ${s.default})` : '';
    return `  --${s.name}${s.boolean ? '' : ' VALUE'}${s.repeat ? ' ...' : ''}\n      ${s.help}${dflt}`;
  });
  return `usage: ${prog} [flags]\n${lines.join('\n')}\n`;
}

export function parseFlags(argv: string[], specs: FlagSpec[]): { flags: Flags; rest: string[] } {
  const flags: Flags = {};
  const rest: string[] = [];
  for (const s of specs) if (s.default !== undefined) flags[s.name] = s.repeat ? [s.default] : s.default;
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      rest.push(a);
      continue;
    }
    if (a === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new Error(`unknown flag --${name}`);
    let value: string | boolean;
    if (spec.boolean) value = eq < 0 ? true : a.slice(eq + 1) !== 'false';
    else if (eq >= 0) value = a.slice(eq + 1);
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`flag --${name} needs a value`);
      value = v;
    }
    if (spec.repeat) {
      const prev = seen.has(name) ? (flags[name] as string[]) : [];
      flags[name] = [...prev, ...String(value).split(',').filter(Boolean)];
    } else flags[name] = value;
    seen.add(name);
  }
  return { flags, rest };
}
