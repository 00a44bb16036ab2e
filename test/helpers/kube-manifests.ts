// deploy/kubernetes's manifests, read and checked against the Kubernetes API's OpenAPI
// schemas by kubernetes-models (each kind's model validates its object), plus the checks a
// schema cannot make across objects (a mount names a volume, envFrom names the ConfigMap).
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const KUBE_DIR = path.resolve(__dirname, '../../deploy/kubernetes');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
}

/** Every object of every .yaml file in deploy/kubernetes, with the file it came from. */
export function readManifests(): { file: string; obj: KubeObject }[] {
  const out: { file: string; obj: KubeObject }[] = [];
  for (const file of fs.readdirSync(KUBE_DIR).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(KUBE_DIR, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJS() as KubeObject | null;
      if (obj) out.push({ file, obj });
    }
  }
  return out;
}

/** Validates obj with the kubernetes-models class of its apiVersion and kind; throws naming what is wrong. */
export async function validateObject(obj: KubeObject): Promise<void> {
  const group = obj.apiVersion.includes('/') ? obj.apiVersion : `v1`;
  // kubernetes-models lays its modules out as <group>/<version>, the core group as v1
  const mod = (await import(`kubernetes-models/${group}`)) as Record<
    string,
    new (o: unknown) => { validate: () => void }
  >;
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`no kubernetes-models class for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

/**
 * The fields of each object that its kind does not have (a typo, a field at the wrong
 * level), which the schema validation lets through (kubernetes-models' schemas leave
 * additionalProperties open, as the API's OpenAPI does). Checked against kubernetes-models'
 * TypeScript interface for the kind (generated from the same OpenAPI schemas) by the
 * TypeScript compiler: each object becomes an object literal of that type, and every
 * property of every nested literal is looked up in the type the compiler expects there
 * (maps, such as labels or a ConfigMap's data, take any key). One message per unknown
 * field: `label(i)`, its path, and the type it is not in.
 */
export function unknownFields(objs: KubeObject[], label: (i: number) => string): string[] {
  const file = path.resolve(__dirname, '../..', '__kube_manifests_strict__.ts');
  const lines = objs.map((o, i) => {
    const group = o.apiVersion.includes('/') ? o.apiVersion : 'v1';
    return `import type { I${o.kind} as T${i} } from 'kubernetes-models/${group}';`;
  });
  objs.forEach((o, i) => lines.push(`export const m${i}: T${i} = ${JSON.stringify(o)};`));
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    path.resolve(name) === file
      ? ts.createSourceFile(name, lines.join('\n'), lang)
      : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  const out: string[] = [];
  // a kind kubernetes-models has no interface for leaves nothing to check against: an error
  for (const imp of source.statements.filter(ts.isImportDeclaration)) {
    for (const d of program.getSemanticDiagnostics(source).filter((x) => x.start! < imp.end && x.start! >= imp.pos))
      out.push(`${imp.getText(source)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  }
  const visit = (node: ts.Node, where: string): void => {
    if (ts.isArrayLiteralExpression(node)) {
      node.elements.forEach((e, i) => visit(e, `${where}[${i}]`));
      return;
    }
    if (!ts.isObjectLiteralExpression(node)) return;
    const expected = checker.getContextualType(node);
    const types = expected ? (expected.isUnion() ? expected.types : [expected]) : [];
    const objects = types.filter((t) => (t.flags & ts.TypeFlags.Object) !== 0);
    const open = objects.length === 0 || objects.some((t) => checker.getIndexInfosOfType(t).length > 0);
    for (const p of node.properties) {
      if (!ts.isPropertyAssignment(p) || !ts.isStringLiteral(p.name)) continue;
      const name = p.name.text;
      if (!open && !objects.some((t) => checker.getPropertyOfType(t, name)))
        out.push(`${where}.${name}: no such field in ${objects.map((t) => checker.typeToString(t)).join(' | ')}`);
      visit(p.initializer, `${where}.${name}`);
    }
  };
  let i = 0;
  for (const st of source.statements.filter(ts.isVariableStatement)) {
    const init = st.declarationList.declarations[0]!.initializer!;
    visit(init, label(i++));
  }
  return out;
}
