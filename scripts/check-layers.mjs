#!/usr/bin/env node
// Checks that imports in src/ flow one way and form no cycle:
//
//   cli | mcp  ->  core  ->  backends  ->  system
//
// cli may also start the MCP transports (src/mcp/transports/); src/shared/ is a leaf every layer may
// import and that imports nothing of ours. Type-only imports count as well: a type that points
// upward is a dependency upward. Exits 1 and names every offending import and every cycle.
//
// Usage: node scripts/check-layers.mjs [--root DIR] [--json]   (DIR holds src/, default: this repo)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Which layers each layer may import. */
export const ALLOWED = {
  shared: ['shared'],
  system: ['system', 'shared'],
  backends: ['backends', 'system', 'shared'],
  core: ['core', 'backends', 'system', 'shared'],
  mcp: ['mcp', 'core', 'shared'],
  cli: ['cli', 'core', 'shared'],
};

/** Folders of a higher layer that a layer may still reach, by path prefix under src/. */
const EXCEPTIONS = {
  cli: ['mcp/transports/'],
};

/** The layer of a file, by its first folder under src/; files directly in src/ are the CLI entry's peers. */
export function layerOf(relPath) {
  const first = relPath.split('/')[0];
  return Object.hasOwn(ALLOWED, first) ? first : undefined;
}

function listSources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listSources(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Every relative module specifier of a source file, with whether it is type-only. */
export function importsOf(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const add = (node, typeOnly) => {
    if (node && ts.isStringLiteralLike(node)) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
      found.push({ specifier: node.text, typeOnly, line: line + 1 });
    }
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (!clause.name &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((element) => element.isTypeOnly)));
      add(node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((entry) => entry.specifier.startsWith('.'));
}

function resolveImport(fromFile, specifier, known) {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [
    base.replace(/\.(m|c)?js$/, '.$1ts').replace(/\.\.ts$/, '.ts'),
    base,
    `${base}.ts`,
    join(base, 'index.ts'),
  ];
  return candidates.find((candidate) => known.has(candidate));
}

/** Strongly connected groups of more than one file (or a file importing itself), each as one cycle path. */
export function findCycles(graph) {
  let index = 0;
  const indexOf = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const groups = [];
  const strong = (start) => {
    // Iterative Tarjan: the src tree is small, but recursion depth should not depend on it.
    const work = [{ node: start, edges: [...(graph.get(start) ?? [])], next: 0 }];
    indexOf.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame.next < frame.edges.length) {
        const to = frame.edges[frame.next++];
        if (!indexOf.has(to)) {
          indexOf.set(to, index);
          low.set(to, index++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edges: [...(graph.get(to) ?? [])], next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node), indexOf.get(to)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent), low.get(frame.node)));
      }
      if (low.get(frame.node) === indexOf.get(frame.node)) {
        const group = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          group.push(member);
        } while (member !== frame.node);
        const selfLoop = group.length === 1 && (graph.get(member) ?? new Set()).has(member);
        if (group.length > 1 || selfLoop) groups.push(group);
      }
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indexOf.has(node)) strong(node);
  return groups.map((group) => cyclePath(graph, new Set(group)));
}

/** A shortest closed path through a group, starting at its first file by name, for the message. */
function cyclePath(graph, members) {
  const start = [...members].sort()[0];
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const to of [...(graph.get(node) ?? [])].sort()) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return { files: [...path, start], size: members.size };
      }
      if (!previous.has(to)) {
        previous.set(to, node);
        queue.push(to);
      }
    }
  }
  return { files: [start, start], size: members.size };
}

/** Reads every src/**\/*.ts under root and returns the layer violations and the cycles. */
export function checkLayers(root) {
  const srcDir = join(root, 'src');
  const files = listSources(srcDir);
  const known = new Set(files);
  const rel = (file) => relative(srcDir, file).split(sep).join('/');
  const graph = new Map();
  const violations = [];
  for (const file of files) {
    const from = rel(file);
    const fromLayer = layerOf(from);
    const edges = new Set();
    graph.set(from, edges);
    for (const entry of importsOf(file, readFileSync(file, 'utf8'))) {
      const target = resolveImport(file, entry.specifier, known);
      if (!target) continue;
      const to = rel(target);
      edges.add(to);
      const toLayer = layerOf(to);
      if (fromLayer === undefined || toLayer === undefined) {
        violations.push({ from, line: entry.line, to, reason: 'file outside the known layers of src/' });
        continue;
      }
      if (ALLOWED[fromLayer].includes(toLayer)) continue;
      if ((EXCEPTIONS[fromLayer] ?? []).some((prefix) => to.startsWith(prefix))) continue;
      violations.push({
        from,
        line: entry.line,
        to,
        typeOnly: entry.typeOnly,
        reason: `${fromLayer} may import only ${ALLOWED[fromLayer].join(', ')}${
          EXCEPTIONS[fromLayer] ? ` and ${EXCEPTIONS[fromLayer].join(', ')}` : ''
        }`,
      });
    }
  }
  return { files: files.length, violations, cycles: findCycles(graph) };
}

function main(argv) {
  const rootFlag = argv.indexOf('--root');
  const root =
    rootFlag >= 0
      ? resolve(argv[rootFlag + 1] ?? '.')
      : resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const result = checkLayers(root);
  if (argv.includes('--json')) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    for (const v of result.violations) {
      console.error(
        `src/${v.from}:${v.line}: imports src/${v.to}${v.typeOnly ? ' (type only)' : ''}: ${v.reason}`,
      );
    }
    for (const cycle of result.cycles) {
      console.error(
        `cycle of ${cycle.size} file${cycle.size === 1 ? '' : 's'}: ${cycle.files.map((f) => `src/${f}`).join(' -> ')}`,
      );
    }
    const ok = result.violations.length === 0 && result.cycles.length === 0;
    console[ok ? 'log' : 'error'](
      `check-layers: ${result.files} files, ${result.violations.length} import(s) against the layer direction, ${result.cycles.length} cycle(s)`,
    );
  }
  return result.violations.length === 0 && result.cycles.length === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
