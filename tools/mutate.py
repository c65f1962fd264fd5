"""`make mutate`: mutation testing of the routing engine, PII detection, pricing and the circuit breaker.

Each mutant is one small change inside a function body (a comparison flipped, `and` for `or`, `continue` for
`break`, `any` for `all`, a constant nudged, a `not` dropped, ...). The fast unit tests of the module's area run
against it; a mutant is killed when they fail. The tests are imported once; each mutant runs in a forked child that
swaps the mutated function's code object in place (so every reference to the function, in the library and in the
tests, sees the mutant), which keeps a mutant to a fraction of a second. Mutants that cannot change behaviour are
listed in tools/mutation-equivalents.json with the reason, and left out of the score.

    python tools/mutate.py [--jobs 2] [--module breaker] [--report docs/mutation.md]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import select
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "layers" / "common" / "python"
EQUIVALENTS = ROOT / "tools" / "mutation-equivalents.json"
MUTANT_TIMEOUT_SECONDS = 60

# module area -> (modules mutated, the fast tests that must catch the mutants)
AREAS: dict[str, tuple[list[str], list[str]]] = {
    "routing": (
        [
            "llm_router.routing.engine",
            "llm_router.routing.index",
            "llm_router.routing.snapshot",
            "llm_router.routing.conditions.length",
            "llm_router.routing.conditions.logic",
            "llm_router.routing.conditions.pii",
            "llm_router.routing.conditions.registry",
            "llm_router.routing.conditions.request",
            "llm_router.routing.conditions.scores",
            "llm_router.routing.conditions.text",
        ],
        [
            "tests/unit/test_engine.py",
            "tests/unit/test_conditions.py",
            "tests/unit/test_condition_registry.py",
            "tests/unit/test_rule_index.py",
            "tests/unit/test_rule_prefilters.py",
            "tests/unit/test_routing_boundaries.py",
            "tests/unit/test_security.py",
        ],
    ),
    "pii": (
        ["llm_router.routing.pii"],
        ["tests/unit/test_pii.py", "tests/unit/test_pii_boundaries.py", "tests/unit/test_security.py"],
    ),
    "pricing": (
        ["llm_router.pricing"],
        ["tests/unit/test_cost.py", "tests/unit/test_price_file.py", "tests/unit/test_gateway.py"],
    ),
    "breaker": (["llm_router.breaker"], ["tests/unit/test_breaker.py", "tests/unit/test_gateway.py"]),
}

COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip
BINOP_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
CALL_SWAPS = {"any": "all", "all": "any", "min": "max", "max": "min"}


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str  # qualified name of the enclosing top-level function or method
    line: int
    what: str
    index: int  # position among the mutation points of the module

    @property
    def key(self) -> str:
        return f"{self.module}:{self.line}:{self.what}"


def mutation_points(node: ast.AST) -> Iterator[tuple[ast.AST, str, object]]:
    """(node, description, replacement) for every mutation this node allows."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap is not None:
                yield node, f"{type(op).__name__} -> {swap.__name__}", ("ops", i, swap())
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield node, f"{type(node.op).__name__} -> {type(other).__name__}", ("op", None, other)
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        swap = BINOP_SWAPS[type(node.op)]
        yield node, f"{type(node.op).__name__} -> {swap.__name__}", ("op", None, swap())
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAPS:
        swap = BINOP_SWAPS[type(node.op)]
        yield node, f"{type(node.op).__name__}= -> {swap.__name__}=", ("op", None, swap())
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node, "not x -> x", ("unwrap", None, None)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield node, f"{node.value} -> {not node.value}", ("value", None, not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield node, f"{node.value!r} -> {node.value + 1!r}", ("value", None, node.value + 1)
    elif isinstance(node, ast.Break):
        yield node, "break -> continue", ("stmt", None, ast.Continue())
    elif isinstance(node, ast.Continue):
        yield node, "continue -> break", ("stmt", None, ast.Break())
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALL_SWAPS:
        yield node, f"{node.func.id}() -> {CALL_SWAPS[node.func.id]}()", ("call", None, CALL_SWAPS[node.func.id])
    elif isinstance(node, ast.Return) and node.value is not None and not _falsy_constant(node.value):
        yield node, "return x -> return None", ("return", None, None)


def _falsy_constant(node: ast.AST) -> bool:
    """`return None`, `return False`: returning None instead changes nothing a caller tests for truth."""
    return isinstance(node, ast.Constant) and not node.value


def _docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(parent, ast.Expr)


def functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{node.name}.{item.name}", item


def mutants_of(module: str) -> tuple[str, list[Mutant]]:
    source = module_path(module).read_text(encoding="utf-8")
    tree = ast.parse(source)
    found: list[Mutant] = []
    for qualname, func in functions(tree):
        parents = {child: parent for parent in ast.walk(func) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(func):
            if node in func.decorator_list or any(node is d for d in ast.walk(func.args)):
                continue
            if node is func.returns or _in_annotation(node, parents):
                continue
            if _docstring(node, parents.get(node)):
                continue
            for _, what, _ in mutation_points(node):
                found.append(Mutant(module, qualname, getattr(node, "lineno", func.lineno), what, len(found)))
    return source, found


def _in_annotation(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.AnnAssign) and child is parent.annotation:
            return True
        if isinstance(parent, ast.arg):
            return True
        child, parent = parent, parents.get(parent)
    return False


def apply(source: str, mutant: Mutant) -> ast.Module:
    """The module's tree with the mutant's change made."""
    tree = ast.parse(source)
    count = 0
    for _, func in functions(tree):
        parents = {child: parent for parent in ast.walk(func) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(func):
            if node in func.decorator_list or any(node is d for d in ast.walk(func.args)):
                continue
            if node is func.returns or _in_annotation(node, parents):
                continue
            if _docstring(node, parents.get(node)):
                continue
            for target, _, (kind, index, replacement) in mutation_points(node):
                if count == mutant.index:
                    _mutate(target, parents, kind, index, replacement)
                    return ast.fix_missing_locations(tree)
                count += 1
    raise LookupError(mutant.key)


def _mutate(node: ast.AST, parents: dict[ast.AST, ast.AST], kind: str, index: int | None, new: object) -> None:
    if kind == "ops":
        assert isinstance(node, ast.Compare) and index is not None
        node.ops[index] = new  # type: ignore[call-overload]
    elif kind == "op":
        node.op = new  # type: ignore[attr-defined]
    elif kind == "value":
        node.value = new  # type: ignore[attr-defined]
    elif kind == "call":
        node.func = ast.Name(id=str(new), ctx=ast.Load())  # type: ignore[attr-defined]
    elif kind in ("unwrap", "stmt", "return"):
        parent = parents[node]
        if kind == "unwrap":
            replacement: ast.AST = node.operand  # type: ignore[attr-defined]
        elif kind == "return":
            replacement = ast.Return(value=ast.Constant(value=None))
        else:
            replacement = new  # type: ignore[assignment]
        ast.copy_location(replacement, node)
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, replacement)
            elif isinstance(value, list):
                setattr(parent, field, [replacement if v is node else v for v in value])


def module_path(module: str) -> Path:
    return LIB / (module.replace(".", "/") + ".py")


def swap_code(module: types.ModuleType, mutated: ast.Module, function: str) -> None:
    """Give the live function (or method) the code of its mutated version."""
    code = compile(mutated, str(module.__file__), "exec")
    namespace: dict[str, object] = {"__name__": module.__name__, "__file__": module.__file__}
    namespace.update({k: v for k, v in vars(module).items() if k.startswith("__") is False})
    exec(code, namespace)  # noqa: S102 - the project's own source, mutated
    live, new = _resolve(vars(module), function), _resolve(namespace, function)
    live.__code__ = new.__code__


def _resolve(namespace: dict[str, object], qualname: str) -> types.FunctionType:
    obj: object = namespace[qualname.split(".")[0]]
    for part in qualname.split(".")[1:]:
        obj = vars(obj)[part]  # the raw attribute: staticmethod, classmethod or property, not the bound one
    for attr in ("__func__", "fget", "__wrapped__"):
        while hasattr(obj, attr) and not isinstance(obj, types.FunctionType):
            obj = getattr(obj, attr)
    assert isinstance(obj, types.FunctionType), qualname
    return obj


def run_tests(tests: list[str]) -> int:
    args = [*tests, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:logging", "--no-header", "-o", "addopts="]
    return int(pytest.main(args))


def run_mutant(source: str, mutant: Mutant, tests: list[str]) -> int:
    """In a forked child: 0 survived, anything else killed (tests failed, crashed or timed out)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            swap_code(sys.modules[mutant.module], apply(source, mutant), mutant.function)
            code = run_tests(tests)
        except BaseException:  # noqa: BLE001 - a mutant that breaks the import or the tests is killed
            code = 3
        finally:
            os._exit(code)
    return pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--area", action="append", choices=list(AREAS), help="only these areas (repeatable)")
    parser.add_argument("--report", type=Path, help="write the scores and survivors as Markdown here")
    parser.add_argument("--show-survivors", action="store_true")
    args = parser.parse_args()
    sys.path[:0] = [str(LIB), str(ROOT)]
    os.chdir(ROOT)
    equivalents: dict[str, str] = json.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.exists() else {}
    started = time.monotonic()
    lines: list[str] = []
    ok = True
    for area in args.area or list(AREAS):
        modules, tests = AREAS[area]
        tests = [t for t in tests if (ROOT / t).exists()]
        __import__("importlib").import_module("llm_router")
        if run_tests(tests) != 0:  # also imports the tests once, before any fork
            print(f"{area}: the tests fail without any mutant; fix them first", file=sys.stderr)
            return 2
        killed = survived = equivalent = 0
        survivors: list[str] = []
        for module in modules:
            __import__("importlib").import_module(module)
            source, mutants = mutants_of(module)
            results = run_all(source, mutants, tests, args.jobs)
            for mutant, code in results:
                if mutant.key in equivalents:
                    equivalent += 1
                elif code != 0:
                    killed += 1
                else:
                    survived += 1
                    survivors.append(f"{mutant.key} (in {mutant.function})")
        scored = killed + survived
        score = 100.0 * killed / scored if scored else 100.0
        ok = ok and score >= 90.0
        line = (
            f"{area:<8} {killed:>4} killed  {survived:>4} survived  {equivalent:>3} equivalent  "
            f"score {score:5.1f} %  ({len(modules)} modules)"
        )
        print(line, flush=True)
        lines.append(line)
        if args.show_survivors or args.report:
            for survivor in survivors:
                print(f"    survived: {survivor}", flush=True)
        lines += [f"    survived: {s}" for s in survivors]
    elapsed = time.monotonic() - started
    print(f"mutation testing took {elapsed:.0f} s", flush=True)
    if args.report:
        report = [
            "# Mutation testing",
            "",
            "`make mutate` (tools/mutate.py) changes the code of routing, PII detection, pricing and the circuit",
            "breaker one small mutation at a time (comparisons, boolean operators, `break`/`continue`, `any`/`all`,",
            "constants, `not`, returned values) and runs the fast unit tests of that area against each mutant. A",
            "mutant the tests do not notice survives. The target is at least 90 % of the non-equivalent mutants",
            "killed in each area.",
            "",
            f"Last run: {time.strftime('%Y-%m-%d', time.gmtime())}, {elapsed:.0f} s.",
            "",
            "```",
            *lines,
            "```",
            "",
            "Equivalent mutants (they cannot change behaviour; left out of the score):",
            "",
        ]
        report += [f"- `{k}`: {v}" for k, v in sorted(equivalents.items())]
        args.report.write_text("\n".join(report) + "\n", encoding="utf-8")
    return 0 if ok else 1


def run_all(source: str, mutants: list[Mutant], tests: list[str], jobs: int) -> list[tuple[Mutant, int]]:
    pending = list(mutants)
    running: dict[int, tuple[Mutant, float]] = {}
    results: list[tuple[Mutant, int]] = []
    while pending or running:
        while pending and len(running) < jobs:
            mutant = pending.pop(0)
            running[run_mutant(source, mutant, tests)] = (mutant, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for child, (_, since) in list(running.items()):
                if time.monotonic() - since > MUTANT_TIMEOUT_SECONDS:
                    os.kill(child, 9)  # an endless loop: killed
            select.select([], [], [], 0.01)
            continue
        mutant, _ = running.pop(pid)
        results.append((mutant, os.waitstatus_to_exitcode(status)))  # negative when killed by a signal
    return results


if __name__ == "__main__":
    raise SystemExit(main())
