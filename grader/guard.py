"""The forbidden-API guard, in two halves.

Static (grading process): ``violations(files, forbidden)`` parses the learner's sources (never runs
them) and returns, per top-level function or class, the forbidden APIs it names: directly, through
import aliases (``import torch.nn.functional as F``; ``from torch.autograd import grad``), or by
calling another top-level function of the module that does. It gives early, clear messages; a name
computed at run time escapes it.

Run time (sandboxed worker, ``worker.Watch``): the operators that learner code actually runs,
whatever name reached them (see ``worker.py``).
"""
from __future__ import annotations

import ast
import functools


def _chain(node) -> tuple[str, list[str]]:
    """An attribute chain ``a.b.c`` as its head and attributes: ``("a", ["b", "c"])``; the head of a
    chain on a computed value (``x.sum().backward``) is ``"?"``. Walked once, whatever its length."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else "?"), parts[::-1]


def _hits(head: str, parts: list[str], aliases: dict, forbidden) -> set[str]:
    """The forbidden APIs that a chain or any of its prefixes names, a prefix naming at most one: a
    full path first (``F.log_softmax``: ``torch.nn.functional.log_softmax``, the first listed when
    several match), else a tensor method (``y.backward``; not on ``self``). One pass, however long."""
    resolved = aliases.get(head, head).split(".")
    names = resolved + parts
    paths, methods, heads = _index(tuple(forbidden))
    if names[0] not in heads and (names[0] == "self" or methods.isdisjoint(names[1:])):
        return set()  # no path starts here, no method is named: most chains (``x``, ``h.shape``)
    matched = sorted((f.count(".") + 1, i, f) for i, f in enumerate(paths) if names[:f.count(".") + 1] == f.split("."))
    hits, first, j = set(), None, 0
    for k in range(len(resolved), len(names) + 1):  # the prefixes: the head, then one attribute more each
        while j < len(matched) and matched[j][0] <= k:  # the paths this prefix is or lies under
            first = matched[j] if first is None or matched[j][1] < first[1] else first
            j += 1
        if first is not None:
            hits.add(first[2])
        elif k >= 2 and names[0] != "self" and names[k - 1] in methods:
            hits.add(names[k - 1])
    return hits


@functools.lru_cache(maxsize=64)
def _index(forbidden: tuple) -> tuple[list, set, set]:
    """The forbidden paths, methods (``.backward``), and the names the paths start with."""
    paths = [f for f in forbidden if not f.startswith(".")]
    return paths, {f[1:] for f in forbidden if f.startswith(".")}, {f.split(".")[0] for f in paths}


def violations(files: dict[str, str], forbidden) -> dict[str, list[str]]:
    """``{name: [forbidden API, ...]}`` for each top-level name that reaches one (``"*"``: module level).
    Raises ``LearnerError`` for sources too convoluted to analyse."""
    try:
        return _violations(files, forbidden)
    except (RecursionError, MemoryError, ValueError, TypeError) as e:
        from grader.sandbox import LearnerError
        from grader.wire import ErrorKind
        raise LearnerError(ErrorKind.IMPORT, f"your code could not be analysed ({type(e).__name__}): "
                                     "nested too deeply or too large; simplify it") from None


def _violations(files: dict[str, str], forbidden) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    calls: dict[str, set[str]] = {}
    for text in files.values():
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # the import reports it (the sandbox survives what the parser does not)
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        tops = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for owner, body in [("*", [n for n in tree.body if n not in tops.values()]), *[(k, [v]) for k, v in tops.items()]]:
            for stmt in body:
                nodes = list(ast.walk(stmt))
                inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}  # part of a longer chain
                for node in nodes:
                    if isinstance(node, ast.Name) and node.id in tops:
                        calls.setdefault(owner, set()).add(node.id)
                    if isinstance(node, (ast.Attribute, ast.Name)) and id(node) not in inner:
                        hits = _hits(*_chain(node), aliases, forbidden)
                        if hits:
                            found.setdefault(owner, set()).update(hits)
    callers: dict[str, set[str]] = {}
    for owner, callees in calls.items():
        for c in callees:
            callers.setdefault(c, set()).add(owner)
    todo = list(found)
    while todo:  # a function that calls a function that calls torch.autograd uses it too (each name
        name = todo.pop()  # goes on again only when what it uses grows: linear in the calls)
        for owner in callers.get(name, ()):
            extra = found[name] - found.get(owner, set())
            if extra:
                found.setdefault(owner, set()).update(extra)
                todo.append(owner)
    return {k: sorted(v) for k, v in found.items()}

