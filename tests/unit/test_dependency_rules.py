"""Dependency rules over the import graph of the project's packages (docs/design.md §2).

The graph is read from the source with :mod:`ast`, never by importing it. Every ``import`` and
``from … import`` statement counts wherever it stands — module level, inside a function or a
class, under ``if TYPE_CHECKING:`` — and so does every call of ``importlib.import_module`` or
``__import__`` whose module name is a string literal (of an f-string, its constant prefix up to
the last dot). A call with a name that cannot be read from the source is itself a violation: it
would hide an edge. Relative imports are resolved against the importing module's package;
``from P import N`` is an edge to ``P.N`` when that is a module of the project, else to ``P``.
The implicit import of a parent package (``import a.b.c`` runs ``a/__init__.py``) is not an edge,
as in import-linter and grimp.

Rules:

1. **Pure protocol code.** ``edge_agent.icao`` imports nothing of the project outside itself;
   ``edge_agent.cccd`` imports nothing outside itself and ``edge_agent.icao`` (the CCCD layer is
   built on the ICAO 9303 primitives; the reverse is forbidden) and ``wire.masking`` (the one
   masking rule). The protocol modules of the ``wire`` package (``wire.errors``, ``wire.kinds``,
   ``wire.masking``, ``wire.topics``, ``wire.signing``, ``wire.sealing``) import only each other.
   None of them does I/O, checked as:

   - no import of a module in :data:`IO_MODULES` (files, sockets, processes, threads, signals,
     clocks and sleeps, logging, dynamic imports, hardware and service clients);
   - of ``os`` only ``os.urandom`` is used (the injectable default random source of BAC, PACE,
     chip and active authentication), no other attribute of ``os`` and no ``os.path``;
   - no call of a builtin in :data:`IO_BUILTINS` (``open``, ``print``, ``input``,
     ``breakpoint``) and no call of a method named in :data:`IO_METHODS` (the file methods of
     :class:`pathlib.Path`, ``sleep``), whatever object it is called on.

2. **Layers.** ``firmware_sim`` (the simulated card, readers, scanners and visitors) never
   imports ``edge_agent``, ``central`` or ``demo``: the demo that writes the collector's tables is
   the ``demo`` package, outside the simulator. Of ``drivers`` it imports only the reader
   interface its simulated reader implements (``drivers.card_reader``, ``drivers.uri``), nothing
   that reads a card: the card side stays an independent implementation. ``drivers`` never imports ``firmware_sim``,
   ``edge_agent``, ``central`` or ``demo`` (the simulated reader lives in the simulator and
   registers its ``sim:`` URI through an entry point). ``central`` and ``edge_agent`` never import
   each other, nor ``firmware_sim`` or ``demo`` (production code does not ship the simulators);
   ``central`` does not import ``drivers`` either (the collector has no card hardware). Both
   sides import the ``wire`` package (schemas, canonical JSON, signing, sealing, topics,
   masking), which imports none of ``edge_agent``, ``central``, ``drivers``, ``firmware_sim`` or
   ``demo``.

3. **No cycles** between the modules of the project's packages (those of
   ``[tool.setuptools.packages.find]`` in pyproject.toml); each cycle is reported as a path whose
   every step names the file and line of its import.

Each failure names the offending file and line. The tests at the end feed the checker a
synthetic tree with one violation of every kind, so the rules themselves can fail.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# --- the rules ----------------------------------------------------------------------------------

#: Pure packages and the project prefixes each may import.
PURE_PACKAGES: dict[str, tuple[str, ...]] = {
    "edge_agent.icao": ("edge_agent.icao",),
    "edge_agent.cccd": ("edge_agent.cccd", "edge_agent.icao", "wire.masking"),
    **dict.fromkeys(WIRE_PURE := ("wire.errors", "wire.kinds", "wire.masking", "wire.topics",
                                  "wire.signing", "wire.sealing"), WIRE_PURE),
}

#: Modules (and their submodules) pure code must not import, with the reason.
IO_MODULES: dict[str, str] = {
    **dict.fromkeys(("io", "pathlib", "shutil", "tempfile", "glob", "fileinput", "mmap",
                     "zipfile", "tarfile", "sqlite3", "dbm", "shelve", "fcntl", "pty", "tty",
                     "termios"), "file or terminal I/O"),
    **dict.fromkeys(("socket", "ssl", "select", "selectors", "asyncio", "urllib", "http",
                     "ftplib", "smtplib", "xmlrpc", "socketserver", "webbrowser"), "network I/O"),
    **dict.fromkeys(("subprocess", "multiprocessing", "threading", "_thread", "concurrent",
                     "signal", "ctypes"), "processes, threads or signals"),
    "sys": "process state and standard streams",
    "time": "clocks and sleeps",
    "logging": "logging handlers write to files and sockets",
    "importlib": "dynamic imports the graph cannot check",
    **dict.fromkeys(("smartcard", "nfc", "serial", "evdev", "cv2", "gpiozero", "pyzbar",
                     "zxingcpp", "picamera2", "paho", "sqlalchemy", "psycopg", "flask",
                     "requests"), "hardware or service client"),
}
#: Of ``os``, only these attributes may be used by pure code.
OS_ALLOWED = frozenset({"urandom"})
IO_BUILTINS = frozenset({"open", "print", "input", "breakpoint"})
IO_METHODS = frozenset({"read_bytes", "read_text", "write_bytes", "write_text", "iterdir",
                        "glob", "rglob", "mkdir", "rmdir", "unlink", "touch", "exists",
                        "is_file", "is_dir", "stat", "chmod", "sleep"})


@dataclass(frozen=True)
class LayerRule:
    source: str
    forbidden: tuple[str, ...]
    why: str
    allowed: tuple[str, ...] = ()  # modules inside ``forbidden`` that may be imported all the same


LAYER_RULES: tuple[LayerRule, ...] = (
    LayerRule("firmware_sim", ("edge_agent", "central", "demo", "drivers"),
              "the card simulator stands alone; the demo that writes the collector's tables is "
              "the demo package; of drivers only the reader interface",
              allowed=("drivers.card_reader", "drivers.uri")),
    LayerRule("drivers", ("firmware_sim", "edge_agent", "central", "demo"),
              "drivers are transports; the simulated reader registers its URI by entry point"),
    LayerRule("central", ("edge_agent", "drivers", "firmware_sim", "demo"),
              "the collector and the agent meet only on the wire; no card hardware and no "
              "simulator in production"),
    LayerRule("edge_agent", ("central", "firmware_sim", "demo"),
              "the collector and the agent meet only on the wire; no simulator in production"),
    LayerRule("wire", ("edge_agent", "central", "drivers", "firmware_sim", "demo"),
              "the wire package is the contract both sides import; it imports neither side"),
)

# --- reading the graph --------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{_rel(self.path, root)}:{self.line}"


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    message: str

    def render(self, root: Path) -> str:
        return f"{_rel(self.path, root)}:{self.line}: {self.message}"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def project_packages(root: Path) -> list[str]:
    """Top-level packages named by ``[tool.setuptools.packages.find] include``."""
    with (root / "pyproject.toml").open("rb") as fh:
        include = tomllib.load(fh)["tool"]["setuptools"]["packages"]["find"]["include"]
    names = sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())
    return [n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in include)]


def discover(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``: dotted name → file."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


class _Reader(ast.NodeVisitor):
    """Collects the imports of one module and, for pure modules, its I/O."""

    def __init__(self, module: str, path: Path, modules: dict[str, Path], pure: bool) -> None:
        self.module, self.path, self.modules, self.pure = module, path, modules, pure
        self.is_package = path.name == "__init__.py"
        self.edges: list[Edge] = []
        self.violations: list[Violation] = []
        self.unreadable: list[Violation] = []
        self.os_names: set[str] = set()
        self.import_module_names: set[str] = {"__import__"}
        self.importlib_names: set[str] = set()

    # resolution

    def _edge(self, name: str, line: int) -> None:
        edge = Edge(self.module, name, self.path, line)
        if edge not in self.edges:  # ``from m import a, b``: one edge per statement and target
            self.edges.append(edge)

    def _package(self) -> str:
        return self.module if self.is_package else self.module.rpartition(".")[0]

    def _absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        base = self._package().split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, *([module] if module else [])])

    def _flag(self, line: int, message: str) -> None:
        self.violations.append(Violation(self.path, line, message))

    # statements

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._edge(alias.name, node.lineno)
            if alias.name == "os":
                self.os_names.add(alias.asname or "os")
            if alias.name == "importlib":
                self.importlib_names.add(alias.asname or "importlib")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node.module, node.level)
        for alias in node.names:
            candidate = f"{base}.{alias.name}" if base else alias.name
            target = candidate if candidate in self.modules else base
            self._edge(target, node.lineno)
            if base == "os" and alias.name not in OS_ALLOWED and self.pure:
                self._flag(node.lineno, f"imports os.{alias.name}: of os, pure code uses only "
                                        f"{', '.join(sorted(OS_ALLOWED))}")
            if base == "importlib" and alias.name == "import_module":
                self.import_module_names.add(alias.asname or alias.name)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (self.pure and isinstance(node.value, ast.Name) and node.value.id in self.os_names
                and node.attr not in OS_ALLOWED):
            self._flag(node.lineno, f"uses os.{node.attr}: of os, pure code uses only "
                                    f"{', '.join(sorted(OS_ALLOWED))}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        dynamic = (isinstance(func, ast.Name) and func.id in self.import_module_names) or (
            isinstance(func, ast.Attribute) and func.attr == "import_module"
            and isinstance(func.value, ast.Name) and func.value.id in self.importlib_names)
        if dynamic:
            name = _literal_module(node)
            if name is None:
                self.unreadable.append(Violation(
                    self.path, node.lineno, "imports a module whose name is not a string "
                                            "literal (the dependency rules cannot check it)"))
            else:
                self._edge(self._absolute(name.lstrip("."), len(name) - len(name.lstrip(".")))
                              if name.startswith(".") else name, node.lineno)
        if self.pure:
            if isinstance(func, ast.Name) and func.id in IO_BUILTINS:
                self._flag(node.lineno, f"calls {func.id}(): pure code does no I/O")
            if isinstance(func, ast.Attribute) and func.attr in IO_METHODS:
                self._flag(node.lineno, f"calls .{func.attr}(): pure code does no I/O")
        self.generic_visit(node)


def _literal_module(call: ast.Call) -> str | None:
    if not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        head = arg.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and "." in head.value:
            return head.value.rpartition(".")[0]
    return None


@dataclass
class Graph:
    root: Path
    modules: dict[str, Path]
    edges: list[Edge]
    io_violations: list[Violation]
    unreadable: list[Violation]

    def project_module(self, target: str) -> str | None:
        """The project module an import lands on (longest known prefix), or None if external."""
        name = target
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None


def _pure_rule(module: str) -> str | None:
    return next((p for p in PURE_PACKAGES if _within(module, p)), None)


def read_graph(root: Path, packages: Iterable[str] | None = None) -> Graph:
    modules = discover(root, project_packages(root) if packages is None else packages)
    edges: list[Edge] = []
    io_violations: list[Violation] = []
    unreadable: list[Violation] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        reader = _Reader(module, path, modules, pure=_pure_rule(module) is not None)
        reader.visit(tree)
        edges += reader.edges
        io_violations += reader.violations
        unreadable += reader.unreadable
    return Graph(root, modules, edges, io_violations, unreadable)


# --- checking -----------------------------------------------------------------------------------


def check_pure(graph: Graph) -> list[Violation]:
    """Rule 1: pure packages stay inside themselves and do no I/O."""
    out = list(graph.io_violations)
    for edge in graph.edges:
        rule = _pure_rule(edge.source)
        if rule is None:
            continue
        target = graph.project_module(edge.target)
        allowed = PURE_PACKAGES[rule]
        if target is not None and not any(_within(target, p) for p in allowed):
            out.append(Violation(edge.path, edge.line,
                                 f"{edge.source} imports {target}: {rule} is pure and imports "
                                 f"only {', '.join(allowed)}"))
        top = edge.target.split(".")[0]
        if target is None and top in IO_MODULES:
            out.append(Violation(edge.path, edge.line,
                                 f"{edge.source} imports {edge.target} ({IO_MODULES[top]}): "
                                 f"{rule} is pure and does no I/O"))
        if target is None and _within(edge.target, "os.path"):
            out.append(Violation(edge.path, edge.line,
                                 f"{edge.source} imports {edge.target} (file I/O): {rule} is "
                                 "pure and does no I/O"))
    return out


def check_layers(graph: Graph) -> list[Violation]:
    """Rule 2: the packages' layers (and no import the graph cannot read)."""
    out = list(graph.unreadable)
    for edge in graph.edges:
        target = graph.project_module(edge.target) or edge.target
        for rule in LAYER_RULES:
            if not _within(edge.source, rule.source):
                continue
            hit = next((f for f in rule.forbidden if _within(target, f)), None)
            if hit is not None and target not in rule.allowed:
                out.append(Violation(edge.path, edge.line,
                                     f"{edge.source} imports {target}: {rule.source} never "
                                     f"imports {hit} ({rule.why})"))
    return out


def find_cycles(graph: Graph) -> list[list[Edge]]:
    """Rule 3: one shortest cycle per strongly connected component of the module graph (through
    its first module by name; fixing it shows the next one, if the component has more)."""
    adjacency: dict[str, dict[str, Edge]] = {m: {} for m in graph.modules}
    for edge in graph.edges:
        target = graph.project_module(edge.target)
        if target is not None:
            adjacency[edge.source].setdefault(target, edge)
    cycles: list[list[Edge]] = []
    for component in _components(adjacency):
        start = min(component)
        if len(component) == 1 and start not in adjacency[start]:
            continue
        cycles.append(_shortest_cycle(adjacency, start, component))
    return sorted(cycles, key=lambda c: c[0].source)


def _components(adjacency: dict[str, dict[str, Edge]]) -> Iterator[set[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(adjacency):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(adjacency[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(adjacency[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                yield component


def _shortest_cycle(adjacency: dict[str, dict[str, Edge]], start: str,
                    component: set[str]) -> list[Edge]:
    previous: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt, edge in sorted(adjacency[node].items()):
            if nxt not in component:
                continue
            if nxt == start:
                path = [edge]
                while path[0].source != start:
                    path.insert(0, previous[path[0].source])
                return path
            if nxt not in previous:
                previous[nxt] = edge
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def render_cycle(cycle: list[Edge], root: Path) -> str:
    steps = " -> ".join(f"{e.source} ({e.where(root)})" for e in cycle)
    return f"import cycle: {steps} -> {cycle[0].source}"


def _report(violations: list[Violation], root: Path) -> str:
    return "\n".join(v.render(root) for v in sorted(violations, key=lambda v: (str(v.path),
                                                                              v.line)))


# --- the project --------------------------------------------------------------------------------

_GRAPH: list[Graph] = []


def project_graph() -> Graph:
    if not _GRAPH:
        _GRAPH.append(read_graph(ROOT))
    return _GRAPH[0]


def test_the_graph_covers_every_package_and_function_level_imports() -> None:
    graph = project_graph()
    tops = {m.split(".")[0] for m in graph.modules}
    assert {"edge_agent", "central", "drivers", "firmware_sim", "demo", "wire"} <= tops
    assert "tests" not in tops and "bench" not in tops
    # drivers/uri.py imports its drivers inside functions: those edges are in the graph.
    uri_targets = {e.target for e in graph.edges if e.source == "drivers.uri"}
    assert {"drivers.pcsc", "drivers.nfc"} <= uri_targets
    # ``importlib.import_module("picamera2")`` in the camera driver is an edge too.
    assert any(e.target == "picamera2" for e in graph.edges
               if e.source == "drivers.scanners.camera")


def test_pure_packages_import_only_themselves_and_do_no_io() -> None:
    violations = check_pure(project_graph())
    assert not violations, "\n" + _report(violations, ROOT)


def test_layers() -> None:
    violations = check_layers(project_graph())
    assert not violations, "\n" + _report(violations, ROOT)


def test_no_import_cycles() -> None:
    cycles = find_cycles(project_graph())
    assert not cycles, "\n" + "\n".join(render_cycle(c, ROOT) for c in cycles)


# --- the rules can fail: a synthetic tree with one violation of every kind ----------------------

_PYPROJECT = """
[tool.setuptools.packages.find]
include = ["edge_agent*", "central*", "drivers*", "firmware_sim*", "demo*", "wire*"]
"""

_BAD_TREE = {
    "edge_agent/__init__.py": "",
    "edge_agent/agent.py": "",
    "edge_agent/icao/__init__.py": "",
    "edge_agent/icao/tlv.py": "import os\n\n\ndef rng() -> bytes:\n    return os.urandom(8)\n",
    "edge_agent/icao/bad.py": (
        "from __future__ import annotations\n"                       # 1
        "import socket\n"                                             # 2
        "from os import path\n"                                       # 3
        "import os\n"                                                 # 4
        "\n"                                                          # 5
        "\n"                                                          # 6
        "def load(name: str) -> bytes:\n"                             # 7
        "    from edge_agent import agent\n"                          # 8
        "    from ..cccd import qr\n"                                 # 9
        "    os.listdir(name)\n"                                      # 10
        "    with open(name, 'rb') as fh:\n"                          # 11
        "        return fh.read()\n"                                  # 12
        "\n"                                                          # 13
        "\n"                                                          # 14
        "def nap(t):\n"                                               # 15
        "    import time\n"                                           # 16
        "    time.sleep(t)\n"                                         # 17
    ),
    "edge_agent/cccd/__init__.py": "",
    "edge_agent/cccd/qr.py": "from edge_agent.icao import tlv\n",
    "edge_agent/cccd/files.py": (
        "import importlib\n"                                          # 1
        "\n"                                                          # 2
        "\n"                                                          # 3
        "def f(p):\n"                                                 # 4
        "    importlib.import_module('edge_agent.agent')\n"           # 5
        "    return p.read_bytes()\n"                                 # 6
    ),
    "firmware_sim/__init__.py": "",
    "firmware_sim/cli.py": (
        "def main() -> None:\n"                                       # 1
        "    from demo import system\n"                               # 2
    ),
    "firmware_sim/chip.py": "from edge_agent.cccd import qr\n",
    "firmware_sim/reader.py": "from drivers import card_reader, uri\nfrom drivers.pcsc import x\n",
    "drivers/card_reader.py": "",
    "drivers/pcsc.py": "",
    "drivers/__init__.py": "",
    "drivers/uri.py": (
        "from importlib import import_module\n"                       # 1
        "\n"                                                          # 2
        "\n"                                                          # 3
        "def open_reader(name: str):\n"                               # 4
        "    import_module('firmware_sim.chip')\n"                    # 5
        "    return import_module(name)\n"                            # 6
    ),
    "central/__init__.py": "",
    "central/web/__init__.py": "",
    "central/web/app.py": "from central.web.views import bp\n",
    "central/web/views.py": (
        "from . import shared\n"                                      # 1
        "\n"                                                          # 2
        "\n"                                                          # 3
        "def view():\n"                                               # 4
        "    from .app import create\n"                               # 5
    ),
    "central/web/shared.py": "",
    "central/reports.py": "from edge_agent.cccd.qr import x\nimport drivers.uri\n",
    "demo/__init__.py": "",
    "demo/system.py": "import central.web.app\nimport firmware_sim.chip\nimport edge_agent.agent\n",
    "wire/__init__.py": "",
    "wire/signing.py": "from edge_agent import agent\n",
    "wire/topics.py": "def f():\n    import central.web.shared\n",
    "wire/masking.py": "import logging\n",
    "bench/__init__.py": "import edge_agent.agent\n",
}


def _write_tree(root: Path, files: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text(_PYPROJECT, encoding="utf-8")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_catches_every_kind_of_violation(tmp_path: Path) -> None:
    _write_tree(tmp_path, _BAD_TREE)
    graph = read_graph(tmp_path)
    assert "bench" not in {m.split(".")[0] for m in graph.modules}

    pure = {v.render(tmp_path) for v in check_pure(graph)}
    expected_pure = {
        "edge_agent/icao/bad.py:2: edge_agent.icao.bad imports socket (network I/O): "
        "edge_agent.icao is pure and does no I/O",
        "edge_agent/icao/bad.py:3: imports os.path: of os, pure code uses only urandom",
        "edge_agent/icao/bad.py:8: edge_agent.icao.bad imports edge_agent.agent: "
        "edge_agent.icao is pure and imports only edge_agent.icao",
        "edge_agent/icao/bad.py:9: edge_agent.icao.bad imports edge_agent.cccd.qr: "
        "edge_agent.icao is pure and imports only edge_agent.icao",
        "edge_agent/icao/bad.py:10: uses os.listdir: of os, pure code uses only urandom",
        "edge_agent/icao/bad.py:11: calls open(): pure code does no I/O",
        "edge_agent/icao/bad.py:16: edge_agent.icao.bad imports time (clocks and sleeps): "
        "edge_agent.icao is pure and does no I/O",
        "edge_agent/icao/bad.py:17: calls .sleep(): pure code does no I/O",
        "edge_agent/cccd/files.py:1: edge_agent.cccd.files imports importlib (dynamic imports "
        "the graph cannot check): edge_agent.cccd is pure and does no I/O",
        "edge_agent/cccd/files.py:5: edge_agent.cccd.files imports edge_agent.agent: "
        "edge_agent.cccd is pure and imports only edge_agent.cccd, edge_agent.icao, "
        "wire.masking",
        "edge_agent/cccd/files.py:6: calls .read_bytes(): pure code does no I/O",
        "wire/signing.py:1: wire.signing imports edge_agent.agent: wire.signing is pure and "
        "imports only wire.errors, wire.kinds, wire.masking, wire.topics, wire.signing, "
        "wire.sealing",
        "wire/topics.py:2: wire.topics imports central.web.shared: wire.topics is pure and "
        "imports only wire.errors, wire.kinds, wire.masking, wire.topics, wire.signing, "
        "wire.sealing",
        "wire/masking.py:1: wire.masking imports logging (logging handlers write to files and "
        "sockets): wire.masking is pure and does no I/O",
    }
    assert pure == expected_pure
    # ``os.urandom`` and cccd -> icao are allowed.
    assert not any("tlv.py" in v or "qr.py" in v for v in pure)

    layers = {v.render(tmp_path).partition(" (")[0] for v in check_layers(graph)}
    assert layers == {
        "firmware_sim/cli.py:2: firmware_sim.cli imports demo.system: firmware_sim never "
        "imports demo",
        "firmware_sim/chip.py:1: firmware_sim.chip imports edge_agent.cccd.qr: firmware_sim "
        "never imports edge_agent",
        "firmware_sim/reader.py:2: firmware_sim.reader imports drivers.pcsc: firmware_sim "
        "never imports drivers",
        "drivers/uri.py:5: drivers.uri imports firmware_sim.chip: drivers never imports "
        "firmware_sim",
        "drivers/uri.py:6: imports a module whose name is not a string literal",
        "central/reports.py:1: central.reports imports edge_agent.cccd.qr: central never "
        "imports edge_agent",
        "central/reports.py:2: central.reports imports drivers.uri: central never imports "
        "drivers",
        "wire/signing.py:1: wire.signing imports edge_agent.agent: wire never imports "
        "edge_agent",
        "wire/topics.py:2: wire.topics imports central.web.shared: wire never imports central",
    }

    cycles = [render_cycle(c, tmp_path) for c in find_cycles(graph)]
    assert cycles == [
        "import cycle: central.web.app (central/web/app.py:1) -> central.web.views "
        "(central/web/views.py:5) -> central.web.app",
    ]


def test_a_longer_cycle_is_reported_as_one_path(tmp_path: Path) -> None:
    _write_tree(tmp_path, {
        "central/__init__.py": "",
        "central/a.py": "import central.b\n",
        "central/b.py": "from central import c\n",
        "central/c.py": "def f():\n    import importlib\n    importlib.import_module('central.a')\n",
        "central/d.py": "import central.a\n",
        "central/self_ref.py": "from central import self_ref\n",
    })
    cycles = [render_cycle(c, tmp_path) for c in find_cycles(read_graph(tmp_path))]
    assert cycles == [
        "import cycle: central.a (central/a.py:1) -> central.b (central/b.py:1) -> "
        "central.c (central/c.py:3) -> central.a",
        "import cycle: central.self_ref (central/self_ref.py:1) -> central.self_ref",
    ]


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    _write_tree(tmp_path, {
        "edge_agent/__init__.py": "",
        "edge_agent/icao/__init__.py": "import os\nfrom os import urandom\n",
        "edge_agent/icao/tlv.py": "from . import __name__ as n\n",
        "edge_agent/cccd/__init__.py": "from edge_agent.icao import tlv\n",
        "edge_agent/agent.py": "from edge_agent.cccd import x\nimport socket\nimport drivers.uri\n",
        "drivers/__init__.py": "",
        "drivers/uri.py": "from importlib.metadata import entry_points\n",
        "firmware_sim/__init__.py": "",
        "firmware_sim/reader.py": "from drivers.uri import x\n",
        "demo/__init__.py": "import firmware_sim.reader\nimport edge_agent.agent\n",
        "wire/__init__.py": "import json\n",
        "wire/errors.py": "",
        "wire/topics.py": "from wire.errors import WireError\n",
        "wire/masking.py": "import os\n",
        "central/__init__.py": "",
        "central/ingest.py": "from wire.topics import n\nimport wire\n",
        "edge_agent/uplink.py": "from wire import topics\n",
    })
    graph = read_graph(tmp_path)
    assert check_pure(graph) == [] and check_layers(graph) == [] and find_cycles(graph) == []
