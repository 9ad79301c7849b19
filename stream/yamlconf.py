"""A small typed YAML loader: frozen dataclasses from a YAML node tree, errors with key and line.

The YAML is composed (not just parsed) so every value keeps its line number; the loader then
walks ``dataclasses.fields()`` of the target class, rejects unknown keys (with a did-you-mean),
checks types and the bounds declared in ``field(metadata={"ge": ..., "gt": ..., "le": ...})``.
Errors read ``FILE:LINE: cameras.gate.fps: must be > 0, got 0``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from engine.errors import EngineError
from stream.bounds import bound_violation

__all__ = ["ConfigError", "Node", "compose_file", "build", "fail"]

Path_ = tuple[str, ...]


class ConfigError(EngineError, ValueError):
    """A config file is not valid; the message names the file line and the key path."""


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """A plain Python value (dict/list/scalar) with the line it came from.

    Dict values and list items are Nodes too, so nested values keep their lines.
    """

    value: Any
    line: int
    source: str

    def plain(self) -> Any:
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def fail(node: Node, path: Path_, message: str) -> typing.NoReturn:
    where = f"{node.source}:{node.line}: "
    key = ".".join(path)
    raise ConfigError(f"{where}{key + ': ' if key else ''}{message}")


def _convert(node: yaml.Node, constructor: yaml.constructor.SafeConstructor, source: str,
             path: Path_) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for k, v in node.value:
            key = constructor.construct_object(k, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                fail(Node(None, k.start_mark.line + 1, source), (*path, key), "duplicate key")
            out[key] = _convert(v, constructor, source, (*path, key))
        return Node(out, line, source)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v, constructor, source, path) for v in node.value], line, source)
    return Node(constructor.construct_object(node, deep=True), line, source)


def compose_file(path: Path) -> Node:
    """Read a YAML file into a Node tree; YAML syntax errors become ConfigError with the line."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config: {exc.strerror or exc}") from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Node({}, 1, source)
        return _convert(root, loader, source, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(map(repr, typing.get_args(tp)))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if isinstance(tp, type):
        return {"str": "a string", "int": "an integer", "float": "a number",
                "bool": "true or false", "dict": "a mapping"}.get(tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "")


def _check_bounds(node: Node, path: Path_, value: float, meta: typing.Mapping[str, Any]) -> None:
    problem = bound_violation(value, meta)
    if problem:
        fail(node, path, problem)


def _value(node: Node, tp: Any, path: Path_, meta: typing.Mapping[str, Any]) -> Any:
    """Check and convert one value against a type annotation."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    v = node.value
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        errors = []
        for a in rest:
            try:
                return _value(node, a, path, meta)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if isinstance(v, dict):  # a mapping was meant for the one dataclass: say what is wrong
            shaped = [e for a, e in zip(rest, errors, strict=True) if dataclasses.is_dataclass(a)]
            if len(shaped) == 1:
                raise shaped[0]
        # a value of the right type out of its bounds (7 for ``int | Literal["auto"]``, le 4)
        typed = [e for a, e in zip(rest, errors, strict=True) if isinstance(a, type)
                 and isinstance(v, a) and isinstance(v, bool) == (a is bool)]
        if len(typed) == 1:
            raise typed[0]
        fail(node, path, f"expected {' or '.join(_type_name(a) for a in args)}, got {v!r}")
    if origin is Literal:
        if v not in args:
            fail(node, path, f"expected one of {', '.join(map(str, args))}, got {v!r}")
        return v
    if tp is Any:
        return node.plain()
    if dataclasses.is_dataclass(tp):
        return build(tp, node, path)
    if origin is tuple:
        if not isinstance(v, list):
            fail(node, path, f"expected a list, got {v!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(n, args[0], (*path, str(i)), meta) for i, n in enumerate(v))
        if len(v) != len(args):
            fail(node, path, f"expected a list of {len(args)} items, got {len(v)}")
        pairs = enumerate(zip(v, args, strict=True))
        return tuple(_value(n, a, (*path, str(i)), meta) for i, (n, a) in pairs)
    if origin is dict:
        if not isinstance(v, dict):
            fail(node, path, f"expected a mapping, got {v!r}")
        return {k: _value(n, args[1], (*path, k), meta) for k, n in v.items()}
    if tp is dict:
        if not isinstance(v, dict):
            fail(node, path, f"expected a mapping, got {v!r}")
        return node.plain()
    if tp is bool:
        if not isinstance(v, bool):
            fail(node, path, f"expected true or false, got {v!r}")
        return v
    if tp in (int, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (
            tp is int and not isinstance(v, int)
        ):
            fail(node, path, f"expected {_type_name(tp)}, got {v!r}")
        _check_bounds(node, path, v, meta)
        return tp(v)
    if tp is str:
        if isinstance(v, (dict, list)) or v is None or isinstance(v, bool):
            fail(node, path, f"expected a string, got {v!r}")
        return str(v)
    raise TypeError(f"yamlconf: unsupported annotation {tp!r} at {'.'.join(path)}")


def build(cls: type, node: Node, path: Path_ = (),
          defaults: dict[str, Node] | None = None,
          fixed: dict[str, Any] | None = None) -> Any:
    """Build dataclass ``cls`` from a mapping Node.

    ``defaults`` fill keys the mapping lacks; ``fixed`` values are set by the caller (not keys).
    """
    fixed = fixed or {}
    if not isinstance(node.value, dict):
        fail(node, path, f"expected a mapping, got {node.value!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in fixed}
    merged = dict(defaults or {})
    merged.update(node.value)
    check_keys(merged, list(known), path)
    kwargs = dict(fixed)
    for name, f in known.items():
        if name in merged:
            kwargs[name] = _value(merged[name], hints[name], (*path, name), f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            fail(node, (*path, name), "required key is missing")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as exc:  # a rule the dataclass checks itself (bounds, URLs...)
        fail(node, (), str(exc))


def check_keys(mapping: dict[str, Node], known: list[str], path: Path_) -> None:
    """Fail on the first key of ``mapping`` not in ``known``, suggesting the closest one."""
    for key, child in mapping.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            fail(child, (*path, key), f"unknown key{hint}; known keys: {', '.join(known)}")
