#!/usr/bin/env python3
"""Import cycles between the modules of a crate: `bench/module-cycles.py asgard-agent/src`.

Collects the `crate::a::b::...` and `super::...` paths each file names (comments and a trailing
`#[cfg(test)] mod tests { ... }` are skipped; a `tests.rs` file is a child module), resolves
each to the deepest module file that exists, and reports

1. the top-level modules each one imports, and the cycles among them;
2. cycles among siblings at any depth (a child naming its parent, as the pipeline stages name
   `super::Item`, is not counted: the parent declares the child).

Exit code 1 when there is a cycle. Plain text parsing, no rustc: macros that build paths are not
seen.
"""
import os
import re
import sys


def modules(src):
    found = {}
    for d, _, files in os.walk(src):
        for f in files:
            if f.endswith('.rs'):
                rel = os.path.relpath(os.path.join(d, f), src)[:-3].split(os.sep)
                if rel[-1] == 'mod':
                    rel = rel[:-1]
                if rel in (['lib'], ['main']):
                    rel = []
                found.setdefault(tuple(rel), []).append(os.path.join(d, f))
    return found


def paths_named(text, here):
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
    out = []
    for prefix, base in (('crate', []), ('super', list(here[:-1]))):
        for m in re.finditer(prefix + r'::((?:\w+::)*)\{([^}]*)\}', text):
            head = m.group(1).split('::')[:-1]
            for part in m.group(2).split(','):
                if part.strip():
                    out.append(base + head + part.strip().split('::'))
        for m in re.finditer(prefix + r'::((?:\w+::)*\w+)', text):
            out.append(base + m.group(1).split('::'))
    return out


def resolve(mods, path):
    for i in range(len(path), 0, -1):
        if tuple(path[:i]) in mods:
            return tuple(path[:i])
    return ()


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else 'src'
    mods = modules(src)
    edges = {m: set() for m in mods}
    for m, files in mods.items():
        for f in files:
            for p in paths_named(open(f, encoding='utf-8').read(), m):
                target = resolve(mods, p)
                if target and target != m:
                    edges[m].add(target)

    top = {}
    for a, targets in edges.items():
        if a:
            top.setdefault(a[0], set())
            for b in targets:
                if b and b[0] != a[0]:
                    top[a[0]].add(b[0])
    for k in sorted(top):
        print(f"{k:12} -> {', '.join(sorted(top[k]))}")
    found = [' <-> '.join(c) for c in cycles(top)]

    siblings = {}
    for a, targets in edges.items():
        for b in targets:
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            if k < len(a) and k < len(b):
                x, y = a[:k + 1], b[:k + 1]
                siblings.setdefault(x, set()).add(y)
                siblings.setdefault(y, set())
    found += [' <-> '.join('::'.join(m) for m in c) for c in cycles(siblings) if len(c[0]) > 1]
    for c in found:
        print('CYCLE:', c)
    print(f"cycles: {len(found)}")
    sys.exit(1 if found else 0)


if __name__ == '__main__':
    main()
