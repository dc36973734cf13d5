#!/usr/bin/env python3
"""Checks the workspace's shape, as the test command runs it:

1. no crate depends on a process crate (trainer, generator, detector, inspector, devbroker),
   as `cargo metadata` reports the dependencies;
2. no module cycle inside a crate: module A using module B (through `crate::`, `super::` or
   `self::` paths) while B, directly or not, uses A, counted between sibling modules at every
   level, test modules left out;
3. the largest files of non-test code, and each one over --max-lines (default 600) named.

Usage: scripts/check-layout.py [--max-lines N] [--strict-size] [--graph]
Exit status 1 when 1. or 2. fails (or 3. with --strict-size).
"""
import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

PROCESS_CRATES = {"trainer", "generator", "detector", "inspector", "devbroker"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workspace():
    """(name, manifest dir, [dependency names]) of every workspace member."""
    text = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    metadata = json.loads(text)
    members = set(metadata["workspace_members"])
    for package in metadata["packages"]:
        if package["id"] in members:
            yield (package["name"], os.path.dirname(package["manifest_path"]),
                   [d["name"] for d in package["dependencies"]])


def strip_tests_and_comments(text):
    """The code without `#[cfg(test)]` items (their braces matched) and without comments."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out, i = [], 0
    for match in re.finditer(r"#\[cfg\(test\)\]", text):
        if match.start() < i:
            continue
        out.append(text[i:match.start()])
        brace = text.find("{", match.end())
        semicolon = text.find(";", match.end())
        if semicolon != -1 and (brace == -1 or semicolon < brace):
            i = semicolon + 1  # `#[cfg(test)] mod tests;` or a use
            continue
        depth, j = 0, brace
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    out.append(text[i:])
    return "".join(out)


def modules(src):
    """Module path (tuple) → file, for the files under a crate's src/ (lib.rs or main.rs root)."""
    found = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                parts = []
            elif parts[-1] == "mod":
                parts = parts[:-1]
            elif parts[0] == "bin":
                continue
            found[tuple(parts)] = path
    return found


def references(module, code, known):
    """The modules `code` (in `module`) names through crate::, super:: and self:: paths."""
    found = set()
    for match in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", code):
        parts = match.group(1).split("::")
        if parts[0] == "crate":
            path, rest = [], parts[1:]
        elif parts[0] == "self":
            path, rest = list(module), parts[1:]
        else:
            path, i = list(module), 0
            while i < len(parts) and parts[i] == "super":
                path, i = path[:-1], i + 1
            rest = parts[i:]
        # The longest known module the path runs through.
        best = tuple(path)
        for k in range(1, len(rest) + 1):
            candidate = tuple(path + rest[:k])
            if candidate in known:
                best = candidate
        found.add(best)
    # `use a::b` inside a module may name a child module by a relative path (2018 edition
    # resolves them from the module itself).
    for match in re.finditer(r"\buse\s+(\w+)::", code):
        candidate = tuple(list(module) + [match.group(1)])
        if candidate in known:
            found.add(candidate)
    return found


def sibling_edges(edges):
    """Each A→B between modules, lifted to the children of their lowest common ancestor."""
    lifted = defaultdict(set)
    for a, b in edges:
        k = 0
        while k < len(a) and k < len(b) and a[k] == b[k]:
            k += 1
        if k == len(a) or k == len(b):
            continue  # a module and its own ancestor or descendant
        lifted[a[:k + 1]].add(b[:k + 1])
    return lifted


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-lines", type=int, default=600)
    parser.add_argument("--strict-size", action="store_true")
    parser.add_argument("--graph", action="store_true", help="print each crate's module graph")
    options = parser.parse_args()
    failed = False
    sizes = []
    for name, directory, dependencies in workspace():
        leaning = sorted(PROCESS_CRATES & set(dependencies))
        if leaning:
            print(f"crate {name} depends on process crate(s): {', '.join(leaning)}")
            failed = True
        src = os.path.join(directory, "src")
        known = modules(src)
        edges = set()
        for module, path in known.items():
            with open(path, encoding="utf-8") as file:
                code = strip_tests_and_comments(file.read())
            sizes.append((sum(1 for line in code.splitlines() if line.strip()),
                          os.path.relpath(path, ROOT)))
            for target in references(module, code, known):
                if target != module:
                    edges.add((module, target))
        graph = sibling_edges(edges)
        if options.graph:
            for source in sorted(graph):
                targets = ", ".join("::".join(t) for t in sorted(graph[source]))
                print(f"{name}: {'::'.join(source)} -> {targets}")
        for component in cycles(graph):
            print(f"crate {name}: module cycle between {', '.join('::'.join(m) for m in component)}")
            failed = True
    sizes.sort(reverse=True)
    print("largest files of non-test code (non-blank lines):")
    for lines, path in sizes[:5]:
        print(f"  {lines:5d} {path}")
    over = [(lines, path) for lines, path in sizes if lines > options.max_lines]
    for lines, path in over:
        print(f"{path}: {lines} lines of non-test code, over {options.max_lines}")
    if over and options.strict_size:
        failed = True
    if failed:
        sys.exit(1)
    print("layout: no crate depends on a process crate; no module cycle")


if __name__ == "__main__":
    main()
