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


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _matches(name: str, forbidden) -> str | None:
    for f in sorted(forbidden, key=lambda f: f.startswith(".")):  # full paths first, then methods
        if f.startswith("."):  # a tensor method such as ".backward" (not the learner's own helpers)
            if "." in name and name.endswith(f) and not name.startswith("self."):
                return f[1:]
        elif name == f or name.startswith(f + "."):
            return f
    return None


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
                for node in ast.walk(stmt):
                    name = None
                    if isinstance(node, (ast.Attribute, ast.Name)):
                        name = _dotted(node)
                    if isinstance(node, ast.Attribute) and not name:
                        name = "?." + node.attr  # a method of a computed value: x.sum().backward
                    if not name:
                        continue
                    head, _, rest = name.partition(".")
                    full = aliases.get(head, head) + ("." + rest if rest else "")
                    hit = _matches(full, forbidden)
                    if hit:
                        found.setdefault(owner, set()).add(hit)
                    if isinstance(node, ast.Name) and node.id in tops:
                        calls.setdefault(owner, set()).add(node.id)
    changed = True
    while changed:  # a function that calls a function that calls torch.autograd uses it too
        changed = False
        for owner, callees in calls.items():
            for c in callees:
                extra = found.get(c, set()) - found.get(owner, set())
                if extra:
                    found.setdefault(owner, set()).update(extra)
                    changed = True
    return {k: sorted(v) for k, v in found.items()}

