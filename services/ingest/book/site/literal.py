"""The literal part of a JavaScript or TypeScript module, read without running it.

A Docusaurus config is a program, but almost every site writes the values ingest needs as
literals. tree-sitter's TypeScript grammars parse the file (TSX for ``.js``/``.mjs``/``.cjs``,
which is a superset of JavaScript with JSX; TypeScript for ``.ts``/``.mts``/``.cts``); this
module turns the exported value into Python values. Whatever depends on running code (an
environment variable, a call, an import, a condition, a function) becomes a ``Computed``
that carries the source text and line, so a caller can say exactly what it could not read.
Nothing is ever executed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Union

import tree_sitter
import tree_sitter_typescript

MAX_SOURCE_BYTES = 512 * 1024  # Docusaurus's own config, one of the largest, is 26 KB
MAX_PARSE_SECONDS = 2.0  # well above what a config of MAX_SOURCE_BYTES takes to parse
_MAX_DEPTH = 64  # nesting of values and bindings; real configs nest fewer than 10 levels
_SNIPPET_CHARS = 80
_MODULE_EXPORTS = "module.exports"  # mutations of the CommonJS export, as if it were a binding


class SourceError(ValueError):
    """The module cannot be read at all (too large, too slow, not JavaScript)."""


@dataclass(frozen=True)
class Computed:
    """A value that only running the module would give."""

    expression: str  # the source text, shortened
    line: int  # 1-based
    why: str = ""  # what makes it computed, when the text alone does not say
    module: str = ""  # for a module's default import (`import x from 'module'`), the module


class _Undefined:
    """JavaScript's ``undefined``: a key set to it counts as not set, as in Docusaurus."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()

JsValue = Union[str, int, float, bool, None, _Undefined, "JsObject", "JsArray", Computed]


@dataclass(frozen=True)
class JsArray:
    """An array literal; a ``Computed`` item stands for an unreadable element or spread."""

    items: tuple[JsValue, ...]


@dataclass(frozen=True)
class JsObject:
    """An object literal. ``opaque`` is set when an unreadable spread or computed key may
    define any key: a key it does not list is then unknown rather than absent."""

    entries: dict[str, JsValue] = field(default_factory=dict)
    opaque: Computed | None = None
    unkeyed: tuple[JsValue, ...] = ()
    """What the unreadable parts hold: a computed key's value, or the unreadable spread itself
    (which may hold anything). React Native's `versions: {[lastVersion]: {badge: false}}` sets
    options of some version, none of them a route."""

    def get(self, key: str) -> JsValue:
        if key in self.entries:
            return self.entries[key]
        return self.opaque if self.opaque is not None else UNDEFINED


# Files read with the TypeScript grammar; any other module (.js, .jsx, .mjs, .cjs, .tsx) with the
# TSX grammar, which reads JavaScript, JSX and TypeScript's types alike (parse's ``typescript``).
TYPESCRIPT_SUFFIXES = (".ts", ".mts", ".cts")


def resolved_module(path: Path, extensions: Sequence[str]) -> Path | None:
    """The file an import or require of ``path`` names: ``path`` itself, else the first of
    ``extensions`` (the resolver's own list, in its order) that gives a file."""
    if path.is_file():
        return path
    return next((c for ext in extensions if (c := path.with_name(path.name + ext)).is_file()), None)


@dataclass(frozen=True)
class Module:
    """The exported value of a module and the line of its export."""

    exported: JsValue
    export_line: int


@cache
def _languages() -> tuple[tree_sitter.Language, tree_sitter.Language]:
    """(TypeScript, TSX) grammars, loaded on first use (no work at import)."""
    return (tree_sitter.Language(tree_sitter_typescript.language_typescript()),
            tree_sitter.Language(tree_sitter_typescript.language_tsx()))


def parse(source: bytes, typescript: bool) -> tree_sitter.Tree:
    """Parse within ``MAX_SOURCE_BYTES`` and ``MAX_PARSE_SECONDS``; a syntax error is a
    ``SourceError`` naming its line."""
    if len(source) > MAX_SOURCE_BYTES:
        raise SourceError(f"is {len(source)} bytes, more than the {MAX_SOURCE_BYTES} read")
    # A parser per call: parsers keep state (a cancelled parse resumes on the next call) and
    # ingest reads sites from worker threads.
    parser = tree_sitter.Parser(_languages()[0 if typescript else 1])
    deadline = time.monotonic() + MAX_PARSE_SECONDS
    try:
        tree = parser.parse(lambda offset, _point: source[offset:offset + 65536],
                            progress_callback=lambda _offset, _error: time.monotonic() > deadline)
    except ValueError:  # the progress callback cancelled the parse
        raise SourceError(f"took more than {MAX_PARSE_SECONDS:g} s to parse") from None
    if tree.root_node.has_error:
        bad = _first_error(tree.root_node)
        line = bad.start_point[0] + 1 if bad is not None else 1
        raise SourceError(f"has a syntax error on line {line}")
    return tree


def _first_error(node: tree_sitter.Node) -> tree_sitter.Node | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            return current
        stack.extend(reversed([c for c in current.children if c.has_error or c.is_missing]))
    return None


def read_module(source: bytes, typescript: bool) -> Module:
    """The value a module exports (``export default``, ``module.exports =``), with
    functions that return a literal read through: Docusaurus calls (and awaits) a config that
    is a function."""
    tree = parse(source, typescript)
    reader = _Reader(tree.root_node)
    export = reader.export_node()
    if export is None:
        raise SourceError("exports nothing (no `export default` or `module.exports =`)")
    exported = reader.config_value(export, reader.top, 0)
    if isinstance(exported, JsObject) and _MODULE_EXPORTS in reader.mutated.members:
        exported = _with_assigned(exported, reader.mutated.members[_MODULE_EXPORTS])
    return Module(exported, export.start_point[0] + 1)


# --- Reading values -------------------------------------------------------------------------

_WRAPPERS = {"parenthesized_expression", "satisfies_expression", "as_expression",
             "non_null_expression", "type_assertion", "await_expression"}
_FUNCTIONS = {"function_declaration", "function_expression", "arrow_function",
              "generator_function", "generator_function_declaration", "function"}
_DECLARATIONS = {"lexical_declaration", "variable_declaration"}
_OWN_RETURNS = _FUNCTIONS | {"method_definition", "class_declaration", "class"}  # returns inside are theirs


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _snippet(node: tree_sitter.Node) -> str:
    text = " ".join(_text(node).split())
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS - 1] + "…"


def _computed(node: tree_sitter.Node, why: str = "") -> Computed:
    return Computed(_snippet(node), node.start_point[0] + 1, why)


def _default_binding(statement: tree_sitter.Node) -> tuple[str, str] | None:
    """(name, module) of the default export an import statement binds, if it binds one."""
    source = statement.child_by_field_name("source")
    clause = next((c for c in statement.children if c.type == "import_clause"), None)
    if source is None or clause is None or source.type != "string":
        return None
    name = next((_text(c) for c in clause.children if c.type == "identifier"), None)
    return (name, _string(source)) if name is not None else None


def _default_import(statement: tree_sitter.Node, name: str) -> str:
    """The module an import statement binds ``name`` to as its default export ("" otherwise)."""
    binding = _default_binding(statement)
    return binding[1] if binding is not None and binding[0] == name else ""


def default_imports(source: bytes) -> dict[str, str]:
    """What an ES module's import statements bind to default exports: name to module, the
    module read as JavaScript reads a string (``'./\\_a.md'`` is ``./_a.md``), however the
    statements share or span lines. A syntax error is a SourceError."""
    found: dict[str, str] = {}
    for statement in parse(source, typescript=False).root_node.named_children:
        binding = _default_binding(statement) if statement.type == "import_statement" else None
        if binding is not None:
            found[binding[0]] = binding[1]
    return found


def _named(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    return (c for c in node.named_children if c.type != "comment")


@dataclass
class _Scope:
    """Names bound in one function body or the module: declarator or import nodes."""

    bindings: dict[str, tree_sitter.Node]
    parent: _Scope | None = None
    values: dict[str, JsValue] = field(default_factory=dict)
    resolving: set[str] = field(default_factory=set)

    def find(self, name: str) -> tuple[_Scope, tree_sitter.Node] | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.bindings:
                return scope, scope.bindings[name]
            scope = scope.parent
        return None


class _Reader:
    def __init__(self, program: tree_sitter.Node) -> None:
        self.program = program
        self.mutated = _mutations(program)
        self.top = _Scope(_bindings(program))

    def export_node(self) -> tree_sitter.Node | None:
        """The exported expression or declaration; the last export wins, as at run time."""
        found: tree_sitter.Node | None = None
        for statement in _named(self.program):
            if statement.type == "export_statement" and any(c.type == "default" for c in statement.children):
                found = statement.child_by_field_name("value") or statement.child_by_field_name("declaration")
            elif statement.type == "export_statement" and any(c.type == "=" for c in statement.children):
                found = next(_named(statement), None)  # TypeScript's `export = config`
            elif statement.type == "expression_statement":
                expr = next(_named(statement), None)
                if expr is not None and expr.type == "assignment_expression":
                    left = expr.child_by_field_name("left")
                    if left is not None and _text(left).replace(" ", "") == "module.exports":
                        found = expr.child_by_field_name("right")
        return found

    def config_value(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        """Like ``value``, but a function is read through to what it returns."""
        node = self._unwrap(node)
        if node.type == "identifier":
            found = scope.find(_text(node))
            if found is not None and found[1].type in _FUNCTIONS:
                return self._returned(found[1], found[0], depth + 1)
            if found is not None and found[1].type == "variable_declarator":
                value = found[1].child_by_field_name("value")
                if value is not None and self._unwrap(value).type in _FUNCTIONS:
                    return self._returned(self._unwrap(value), found[0], depth + 1)
        if node.type in _FUNCTIONS:
            return self._returned(node, scope, depth + 1)
        return self.value(node, scope, depth)

    def _unwrap(self, node: tree_sitter.Node) -> tree_sitter.Node:
        while node.type in _WRAPPERS:
            inner = next(_named(node), None)
            if inner is None:
                break
            node = inner
        return node

    def _returned(self, function: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        body = function.child_by_field_name("body")
        if body is None:
            return _computed(function, "a function without a body")
        if body.type != "statement_block":  # arrow function with an expression body
            return self.config_value(body, scope, depth)
        inner = _Scope(_bindings(body), scope)
        returns = [s for s in _named(body) if s.type == "return_statement"]
        if len(returns) != 1 or _has_nested_return(body):
            return _computed(function, "a function whose result depends on how it runs")
        expr = next(_named(returns[0]), None)
        return UNDEFINED if expr is None else self.config_value(expr, inner, depth)

    def value(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        if depth > _MAX_DEPTH:
            return _computed(node, "nested too deeply")
        node = self._unwrap(node)
        kind = node.type
        if kind == "string":
            return _string(node)
        if kind == "template_string":
            return self._template(node, scope, depth)
        if kind == "number":
            return _number(node)
        if kind in {"true", "false"}:
            return kind == "true"
        if kind == "null":
            return None
        if kind == "undefined":
            return UNDEFINED
        if kind in {"identifier", "shorthand_property_identifier"}:
            return self._identifier(node, scope, depth)
        if kind == "object":
            return self._object(node, scope, depth)
        if kind == "array":
            return self._array(node, scope, depth)
        if kind == "binary_expression":
            return self._binary(node, scope, depth)
        if kind == "unary_expression":
            return self._unary(node, scope, depth)
        if kind in _FUNCTIONS:
            return _computed(node, "a function")
        return _computed(node)

    def _identifier(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        name = _text(node)
        if name == "undefined":
            return UNDEFINED
        found = scope.find(name)
        if found is None:
            return _computed(node, f"`{name}` is not declared in the config")
        owner, binding = found
        if binding.type.startswith("import"):
            return replace(_computed(node, f"`{name}` is an import"), module=_default_import(binding, name))
        if binding.type != "variable_declarator":
            return _computed(node, f"`{name}` is a function or class")
        if name in owner.values:
            return owner.values[name]
        if name in owner.resolving:
            return _computed(node, f"`{name}` refers to itself")
        declaration = binding.parent
        value_node = binding.child_by_field_name("value")
        name_node = binding.child_by_field_name("name")
        if value_node is not None and name_node is not None and name_node.type != "identifier":
            result: JsValue = _computed(value_node, f"`{name}` is destructured from it")
        elif value_node is None:
            result = _computed(node, f"`{name}` has no value where it is declared")
        elif name in self.mutated.reassigned and _reassignable(declaration):
            result = _computed(node, f"`{name}` is reassigned")
        else:
            result = self._resolve(name, value_node, owner, depth)
        if name in self.mutated.members and isinstance(result, JsObject):
            result = _with_assigned(result, self.mutated.members[name])
        owner.values[name] = result
        return result

    def _resolve(self, name: str, value_node: tree_sitter.Node, owner: _Scope, depth: int) -> JsValue:
        owner.resolving.add(name)
        try:
            return self.value(value_node, owner, depth + 1)
        finally:
            owner.resolving.discard(name)

    def _template(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        parts: list[str] = []
        for child in _named(node):
            if child.type == "string_fragment":
                parts.append(_text(child))
            elif child.type == "escape_sequence":
                parts.append(_unescape(_text(child)))
            elif child.type == "template_substitution":
                inner = next(_named(child), None)
                value = self.value(inner, scope, depth + 1) if inner is not None else _computed(child)
                text = _to_text(value)
                if text is None:
                    return _computed(node, f"`{_snippet(child)}` is not a literal")
                parts.append(text)
        return "".join(parts)

    def _object(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        entries: dict[str, JsValue] = {}
        opaque: Computed | None = None
        unkeyed: list[JsValue] = []
        for child in _named(node):
            if child.type == "pair":
                key_node = child.child_by_field_name("key")
                value_node = child.child_by_field_name("value")
                value = self.value(value_node, scope, depth + 1) if value_node is not None else _computed(child)
                key = self._key(key_node, scope, depth) if key_node is not None else None
                if key is None:
                    opaque = _computed(child, "a computed key")
                    unkeyed.append(value)
                    continue
                entries[key] = value
            elif child.type == "shorthand_property_identifier":
                entries[_text(child)] = self._identifier(child, scope, depth + 1)
            elif child.type == "method_definition":
                name = child.child_by_field_name("name")
                key = self._key(name, scope, depth) if name is not None else None
                if key is not None:
                    entries[key] = _computed(child, "a function")
            elif child.type == "spread_element":
                inner = next(_named(child), None)
                spread = self.value(inner, scope, depth + 1) if inner is not None else _computed(child)
                if isinstance(spread, JsObject):
                    entries.update(spread.entries)
                    opaque = spread.opaque or opaque
                    unkeyed += spread.unkeyed
                elif not isinstance(spread, (_Undefined, type(None))):
                    # An unreadable spread may override any key written before it.
                    opaque = _computed(child, "an object spread that could not be read")
                    entries = {k: opaque for k in entries}
                    unkeyed.append(opaque)
            else:
                opaque = _computed(child)
                unkeyed.append(opaque)
        return JsObject(entries, opaque, tuple(unkeyed))

    def _key(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> str | None:
        if node.type in {"property_identifier", "identifier"}:
            return _text(node)
        if node.type == "string":
            return _string(node)
        if node.type == "number":
            return _number_key(_number(node))
        if node.type == "computed_property_name":
            inner = next(_named(node), None)
            value = self.value(inner, scope, depth + 1) if inner is not None else None
            return value if isinstance(value, str) else None
        return None

    def _array(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        items: list[JsValue] = []
        for child in _named(node):
            if child.type == "spread_element":
                inner = next(_named(child), None)
                spread = self.value(inner, scope, depth + 1) if inner is not None else _computed(child)
                if isinstance(spread, JsArray):
                    items.extend(spread.items)
                else:
                    items.append(_computed(child, "an array spread that could not be read"))
            else:
                items.append(self.value(child, scope, depth + 1))
        return JsArray(tuple(items))

    def _binary(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        operator = node.child_by_field_name("operator")
        left_node, right_node = node.child_by_field_name("left"), node.child_by_field_name("right")
        if operator is None or left_node is None or right_node is None or operator.type != "+":
            return _computed(node)
        left, right = self.value(left_node, scope, depth + 1), self.value(right_node, scope, depth + 1)
        if isinstance(left, str) or isinstance(right, str):
            left_text, right_text = _to_text(left), _to_text(right)
            if left_text is not None and right_text is not None:
                return left_text + right_text
        elif _is_number(left) and _is_number(right):
            return _number_sum(left, right)
        return _computed(node)

    def _unary(self, node: tree_sitter.Node, scope: _Scope, depth: int) -> JsValue:
        operator = node.child_by_field_name("operator")
        argument = node.child_by_field_name("argument")
        if operator is None or argument is None:
            return _computed(node)
        value = self.value(argument, scope, depth + 1)
        if operator.type == "-" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
        if operator.type == "!" and isinstance(value, (bool, int, float, str)):
            return not value
        return _computed(node)


# --- Scopes and mutations -------------------------------------------------------------------

def _bindings(block: tree_sitter.Node) -> dict[str, tree_sitter.Node]:
    """Names declared at the top of a module or function body (not inside nested blocks)."""
    names: dict[str, tree_sitter.Node] = {}
    for statement in _named(block):
        if statement.type == "export_statement":  # `export const x = …`
            declaration = statement.child_by_field_name("declaration")
            if declaration is None:
                continue
            statement = declaration
        if statement.type in _DECLARATIONS:
            for declarator in _named(statement):
                name = declarator.child_by_field_name("name")
                if declarator.type != "variable_declarator" or name is None:
                    continue
                if name.type == "identifier":
                    names[_text(name)] = declarator
                else:  # `const {a, b: c} = …`: each name is bound to the declarator
                    for identifier in _descendants(name, "identifier", "shorthand_property_identifier_pattern"):
                        names[_text(identifier)] = declarator
        elif statement.type in _FUNCTIONS | {"class_declaration"}:
            name = statement.child_by_field_name("name")
            if name is not None:
                names[_text(name)] = statement
        elif statement.type == "import_statement":
            for identifier in _descendants(statement, "identifier"):
                names[_text(identifier)] = statement
    return names


def _reassignable(declaration: tree_sitter.Node | None) -> bool:
    """``var`` and ``let`` bindings can be assigned again; ``const`` ones cannot."""
    return declaration is not None and (declaration.type == "variable_declaration" or any(
        c.type == "let" for c in declaration.children))


@dataclass
class _Mutations:
    reassigned: set[str] = field(default_factory=set)  # `x = …` anywhere
    members: dict[str, dict[str, Computed]] = field(default_factory=dict)  # `x.key… = …`


def _mutations(program: tree_sitter.Node) -> _Mutations:
    """Assignments after a declaration: a reassigned ``let``/``var`` is unknown, and a key of
    an object assigned later (``config.baseUrl = …``) is unknown too."""
    found = _Mutations()
    for node in _descendants(program, "assignment_expression", "augmented_assignment_expression",
                             "update_expression"):
        target = node.child_by_field_name("left") or node.child_by_field_name("argument")
        if target is None:
            continue
        if target.type == "identifier":
            found.reassigned.add(_text(target))
            continue
        chain: list[tree_sitter.Node] = []
        while target.type in {"member_expression", "subscript_expression"}:
            chain.append(target)
            inner = target.child_by_field_name("object")
            if inner is None:
                break
            target = inner
        if target.type != "identifier" or not chain:
            continue
        keys = [_member_key(link) for link in reversed(chain)]
        name = _text(target)
        if name == "module" and keys[0] == "exports":  # `module.exports = …` is the export itself
            if len(keys) == 1:
                continue
            name, keys = _MODULE_EXPORTS, keys[1:]
        found.members.setdefault(name, {})[keys[0]] = _computed(node, "assigned after its declaration")
    return found


def _member_key(link: tree_sitter.Node) -> str:
    """The key a member or subscript expression reads; ``*`` when it is computed."""
    key = link.child_by_field_name("property") or link.child_by_field_name("index")
    if key is not None and key.type == "property_identifier":
        return _text(key)
    return _string(key) if key is not None and key.type == "string" else "*"


def _with_assigned(value: JsObject, assigned: dict[str, Computed]) -> JsObject:
    entries = dict(value.entries)
    opaque = value.opaque
    for key, computed in assigned.items():
        if key == "*":
            opaque = computed
            entries = {k: computed for k in entries}
        else:
            entries[key] = computed
    return JsObject(entries, opaque)


def _has_nested_return(body: tree_sitter.Node) -> bool:
    """A return below the body's own statements (in an ``if``, a loop…), functions excepted."""
    stack = [s for s in _named(body) if s.type != "return_statement"]
    while stack:
        node = stack.pop()
        if node.type == "return_statement":
            return True
        if node.type not in _OWN_RETURNS:
            stack.extend(node.named_children)
    return False


def _descendants(node: tree_sitter.Node, *types: str) -> Iterator[tree_sitter.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in types:
            yield current
        stack.extend(current.named_children)


# --- Literals -------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unescape(escape: str) -> str:
    body = escape[1:]
    try:
        if body.startswith("u{"):
            return chr(int(body[2:-1], 16))
        if body.startswith(("u", "x")) and len(body) > 1:
            return chr(int(body[1:], 16))
    except ValueError:  # out of range: kept as written rather than guessed
        return escape
    if body.startswith(("\r\n", "\n", "\r", "\u2028", "\u2029")):
        return ""  # line continuation
    return _ESCAPES.get(body, body)


def _string(node: tree_sitter.Node) -> str:
    parts: list[str] = []
    for child in node.named_children:
        if child.type == "string_fragment":
            parts.append(_text(child))
        elif child.type == "escape_sequence":
            parts.append(_unescape(_text(child)))
    return "".join(parts)


_NUMBER = re.compile(r"^(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|\d+n?)$")


def _number(node: tree_sitter.Node) -> int | float | Computed:
    text = _text(node).replace("_", "")
    try:
        if _NUMBER.match(text):
            return int(text.rstrip("n"), 0) if not text.isdigit() else int(text)
        return float(text)
    except ValueError:
        return _computed(node, "a number that could not be read")


def _number_key(value: int | float | Computed) -> str | None:
    if isinstance(value, Computed):
        return None
    return str(int(value)) if float(value).is_integer() else repr(value)


def _is_number(value: JsValue) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_sum(left: JsValue, right: JsValue) -> JsValue:
    assert isinstance(left, (int, float)) and isinstance(right, (int, float))
    return left + right


def _to_text(value: JsValue) -> str | None:
    """How ``String(value)`` reads for the literals that have an obvious form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    return None
