"""Read a YAML file defensively and remember where every key came from.

PyYAML's loaders lose line numbers, silently accept duplicate keys and expand
alias bombs without limit. This reader composes the node graph (which shares aliased
nodes instead of copying them), converts it with a node budget, rejects duplicate keys
and tags other than YAML's plain ones, and records the (line, column) of every key path
so errors can point into the file. Every error is one line: PyYAML's own messages span
several, with a copy of the offending line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from supervisor.errors import SpaceError

MAX_BYTES = 1_000_000
MAX_NODES = 20_000
MAX_DEPTH = 32

MAX_KEY_SHOWN = 80  # characters of one key in a message; the position finds the rest

KeyPath = tuple[str | int, ...]

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")
)


def format_key(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += (
            f"[{part}]" if isinstance(part, int) else (f".{_shown(part)}" if out else _shown(part))
        )
    return out


def _shown(key: str) -> str:
    """A key as one short line: control characters escaped, long keys cut."""
    if len(key) > MAX_KEY_SHOWN:
        key = f"{key[:MAX_KEY_SHOWN]}...({len(key)} characters)"
    return key if key.isprintable() else repr(key)[1:-1]


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class YamlSource:
    """Parsed YAML plus the position of every key path, for error messages."""

    file: str
    data: Any
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # Booleans written in YAML 1.1's other spellings (yes, no, on, off, NO ...), as written:
    # `[NO, SE, DK]` holds False, and the parser can say why.
    spelled: dict[KeyPath, str] = field(default_factory=dict)

    def error(self, path: KeyPath, message: str) -> SpaceError:
        """A SpaceError at ``path`` (or its nearest located ancestor)."""
        probe = path
        while probe and probe not in self.marks:
            probe = probe[:-1]
        line, col = self.marks.get(probe, (None, None))
        return SpaceError(self.file, format_key(path), message, line, col)


def read_yaml(path: str | Path) -> YamlSource:
    name = str(path)
    p = Path(path)
    try:
        if not p.is_file():
            raise SpaceError(name, "", "no such file" if not p.exists() else "not a file")
        raw = p.read_bytes()
    except OSError as exc:
        raise SpaceError(name, "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise SpaceError(
            name, "", f"file is {len(raw)} bytes; a space file is at most {MAX_BYTES}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        raise SpaceError(name, "", message, line, column) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> YamlSource:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = _one_line(exc.problem or "invalid YAML")
        if "\t" in text and ("tab" in problem or "'\\t'" in problem):
            problem += " (use spaces, not tabs, to indent)"
        if mark is not None and "expected ':'" in problem:
            line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
            if len(line) > 1024:
                problem += " (YAML keys are at most 1024 characters long)"
        raise SpaceError(
            name,
            "",
            f"invalid YAML: {problem}",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:  # a control character: no mark, only an offset
        before = text[: exc.position]
        row, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character
        code = char if isinstance(char, int) else ord(char[:1] or "\0")
        problem = f"character U+{code:04X} is not allowed in YAML ({exc.reason})"
        raise SpaceError(name, "", f"invalid YAML: {problem}", row, column) from None
    except yaml.YAMLError as exc:
        raise SpaceError(name, "", f"invalid YAML: {_one_line(str(exc))}") from None
    source = YamlSource(name, None)
    if node is None:
        raise SpaceError(name, "", "the file is empty")
    budget = [MAX_NODES]
    source.data = _convert(node, (), source, budget, 0)
    return source


_constructor = yaml.SafeLoader("")


def _convert(
    node: yaml.Node, path: KeyPath, src: YamlSource, budget: list[int], depth: int
) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise src.error(path, f"more than {MAX_NODES} YAML nodes (an alias bomb?)")
    if depth > MAX_DEPTH:
        raise src.error(path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        plain = _YAML + ("map" if isinstance(node, yaml.MappingNode) else "seq")
        if node.tag != plain:  # !!set, !!omap, !!python/object/apply:... on a collection
            raise _at(src, node, path, f"unsupported YAML tag {_tag(node.tag)}")
    elif node.tag not in _SCALAR_TAGS:
        raise _at(src, node, path, f"unsupported YAML tag {_tag(node.tag)}")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _at(src, key_node, path, "YAML merge keys (<<) are not supported")
            key = _convert(key_node, path, src, budget, depth + 1)
            if not isinstance(key, str):
                raise _at(src, key_node, path, f"keys must be strings, got {key!r}")
            child = (*path, key)
            if key in out:
                raise _at(src, key_node, child, "duplicate key")
            src.marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, child, src, budget, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            child = (*path, i)
            src.marks[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_convert(item, child, src, budget, depth + 1))
        return items
    if node.tag == _YAML + "bool" and str(node.value).lower() not in ("true", "false"):
        src.spelled[path] = str(node.value)
    if node.tag in (_YAML + "int", _YAML + "float") and ":" in str(node.value):
        number = _constructor.construct_object(node, deep=True)  # 1:30 is 90 in YAML 1.1
        raise _at(
            src,
            node,
            path,
            f"YAML 1.1 reads {node.value} as the number {number} (base 60); quote it to pass"
            " it as text",
        )
    try:
        return _constructor.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        raise _at(src, node, path, f"bad value: {_one_line(exc.problem or '')}") from None
    except (yaml.YAMLError, ValueError) as exc:  # e.g. an impossible date 2024-02-30
        raise _at(src, node, path, f"bad value: {_one_line(str(exc))}") from None


def _tag(tag: str) -> str:
    return repr("!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag)


def _at(src: YamlSource, node: yaml.Node, path: KeyPath, message: str) -> SpaceError:
    key = format_key(path)
    return SpaceError(src.file, key, message, node.start_mark.line + 1, node.start_mark.column + 1)
