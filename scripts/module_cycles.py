#!/usr/bin/env python3
"""Import cycles between the source files of each workspace crate.

Each `.rs` file under a crate's `src/` is a module; a file imports another when it names a
path into it (`crate::a::b`, `super::x`, `self::y`, in a `use` or inline). A parent module
declaring a child (`pub mod x;`) is not an import. Prints every cycle found (as the files
that form it) and exits 1 if there is one, 0 otherwise.

    python3 scripts/module_cycles.py            # every crate of the workspace
    python3 scripts/module_cycles.py shared/io  # one crate
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["shared/core", "shared/io", "functions/endpoint", "functions/pull", "functions/compaction",
          "functions/cli"]
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^{}]*)\}")
COMMENT = re.compile(r"//[^\n]*")


def modules(src: Path) -> dict[tuple[str, ...], Path]:
    """Module path (crate-relative) of every file under `src`."""
    found = {}
    for file in src.rglob("*.rs"):
        parts = list(file.relative_to(src).with_suffix("").parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        if parts and parts[0] == "bin":
            continue
        found[tuple(parts)] = file
    return found


def resolve(here: tuple[str, ...], head: str, tail: list[str], known) -> tuple[str, ...] | None:
    """The module a path names (its longest known prefix), or None outside the crate."""
    if head == "crate":
        base = []
    elif head == "self":
        base = list(here)
    else:
        base = list(here[:-1])
    for part in tail:
        if part == "super":
            base = base[:-1]
        else:
            base.append(part)
    while base and tuple(base) not in known:
        base.pop()
    return tuple(base)


def edges(src: Path) -> dict[Path, set[Path]]:
    known = modules(src)
    graph: dict[Path, set[Path]] = {file: set() for file in known.values()}
    for here, file in known.items():
        text = COMMENT.sub("", file.read_text())
        paths = []
        for head, prefix, names in GROUP.findall(text):
            for name in names.split(","):
                name = name.strip().split(" as ")[0].strip()
                if name:
                    paths.append((head, (prefix + "::" + name).strip(":").split("::")))
        for head, rest in PATH.findall(text):
            paths.append((head, rest.strip(":").split("::")))
        for head, tail in paths:
            target = resolve(here, head, [t for t in tail if t], known)
            if target is not None and known.get(target) not in (None, file) and target != ():
                graph[file].add(known[target])
    return graph


def cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    crates = argv or CRATES
    failed = False
    for crate in crates:
        for group in cycles(edges(ROOT / crate / "src")):
            failed = True
            print("cycle: " + " <-> ".join(str(p.relative_to(ROOT)) for p in group))
    if not failed:
        print(f"no import cycle in {len(crates)} crates")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
