#!/usr/bin/env python3
"""Import edges between the modules of a crate, and the circles among them.

    scripts/module-graph.py [SRC_DIR] [--depth N] [--edges]

SRC_DIR defaults to host/src. A module is named by its path from the crate
root, cut to N segments (default 2: `results::store`, `components::capabilities`;
1 gives the rooms). Edges come from `crate::…` and `super::…` paths in
the code (comments and `#[cfg(test)]` modules, inline or in their own
file, are skipped). Prints the
strongly connected groups with more than one member, one per line, and
exits 1 when there is one: a reviewer's check that imports run one way.
"""
import os
import re
import sys


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    # A trailing `#[cfg(test)] mod tests { … }` is the module's own tests.
    m = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def inline_modules(text):
    """Spans of `mod x { … }` blocks written inside a file."""
    spans = []
    for m in re.finditer(r"\bmod\s+\w+\s*\{", text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        spans.append((m.end(), i))
    return spans


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else "host/src"
    depth = 2
    if "--depth" in sys.argv:
        depth = int(sys.argv[sys.argv.index("--depth") + 1])
        args = [a for a in args if a != str(depth)]
        src = args[0] if args else "host/src"
    modules = {}
    for root, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(root, f)
                modules[tuple(module_of(os.path.relpath(path, src)))] = path
    # Test-only files (`#[cfg(test)] mod x;` in their parent) are left out,
    # like inline test modules: they are not part of the import structure.
    for mod, path in list(modules.items()):
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            modules.pop(mod + (m.group(1),), None)
    known = set(modules)

    def cut(parts):
        # Longest known module prefix (a path may end in an item), then cut.
        for n in range(len(parts), -1, -1):
            if tuple(parts[:n]) in known:
                return tuple(parts[:n][:depth])
        return tuple(parts[:depth])

    edges = {}
    for mod, path in modules.items():
        text = strip(open(path, encoding="utf-8").read())
        me = cut(list(mod))
        inline = inline_modules(text)
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
            segs = m.group(2).split("::")[1:]
            if m.group(1) == "crate":
                target = segs
            else:
                # `super` is the parent of this module (for a/mod.rs too),
                # or this module itself inside an inline `mod x { … }`.
                inside = any(a <= m.start() < b for a, b in inline)
                base = list(mod) if inside else list(mod)[:-1]
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
                target = base + segs
            t = cut(target)
            if t != me:
                edges.setdefault(me, set()).add(t)

    name = lambda m: "::".join(m) or "crate"
    if "--edges" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{name(a)} -> {name(b)}")

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    nodes = sorted(set(edges) | {b for bs in edges.values() for b in bs})

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    print(f"{src} (depth {depth}): {len(nodes)} modules, "
          f"{sum(len(b) for b in edges.values())} edges, {len(sccs)} circles")
    for scc in sorted(sccs):
        print("  circle: " + " <-> ".join(name(m) for m in scc))
    sys.exit(1 if sccs else 0)


if __name__ == "__main__":
    main()
