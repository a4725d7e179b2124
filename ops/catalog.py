"""Check a catalog file (事项清单, YAML) and report every problem with its line.

The file has two top-level keys::

    matters:          # 事项: the fields of a catalog entry, DOMAIN.md "Matter"
      - code: SY-SFJ-LS-01
        name: 律师执业申请
        ...
    bundles:          # 一件事一次办 (optional)
      - code: YJS-QYKB
        name: 企业开办
        matters: [SY-SCJ-QY-01, SY-GAJ-KZ-01]

Field names are those of the signed config (docs/protocol.md §6). The YAML is composed into
nodes first, so every value keeps the line it came from; each field is then checked on its
own, so one run lists *every* problem (not just the first), and finally each entry that
passed is parsed by :class:`protocol.config.Matter` itself, the single authority on what a
matter is. An entry whose department has no authority at its level in the federation is a
problem too (the signed config would refuse it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from protocol.config import (
    DECIDING_LEVELS,
    KINDS,
    MATTER_TYPES,
    SCOPES,
    UNITS,
    Bundle,
    Matter,
)
from protocol.errors import ProtocolError
from protocol.ids import DEPT_RE, LEVEL_ORDER, MEMBER_RE, level_of

Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in the file, at a 1-based line."""

    line: int
    where: str
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.where}: {self.message}"


@dataclass
class Located:
    """A YAML value with the line it starts on and its children's positions."""

    value: Any
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)
    children: dict[Any, Located] = field(default_factory=dict)

    def child(self, key: Any) -> Located | None:
        return self.children.get(key)

    def line_of(self, key: Any) -> int:
        """The line of a child's value, or this node's line when the child is missing."""
        child = self.children.get(key)
        return self.line if child is None else child.line


@dataclass
class CatalogCheck:
    """The outcome: normalized matters and bundles (config form), problems and warnings."""

    matters: list[dict[str, Any]] = field(default_factory=list)
    bundles: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _locate(node: yaml.Node, value: Any) -> Located:
    here = Located(value, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            # The constructed key (``1`` for ``1:``) is what the dict holds.
            key = next((k for k in value if str(k) == key_node.value), key_node.value)
            here.key_lines[str(key)] = key_node.start_mark.line + 1
            if key in value:
                here.children[key] = _locate(value_node, value[key])
    elif isinstance(node, yaml.SequenceNode) and isinstance(value, list):
        for i, (item_node, item) in enumerate(zip(node.value, value, strict=False)):
            here.children[i] = _locate(item_node, item)
    return here


def load_located(text: str) -> Located:
    """Parse YAML keeping line numbers; a syntax error is a :class:`CatalogSyntaxError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, 1)
        return _locate(node, loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise CatalogSyntaxError(Problem(line, "YAML", f"语法错误: {exc.problem}")) from None
    except yaml.YAMLError as exc:
        raise CatalogSyntaxError(Problem(1, "YAML", f"语法错误: {exc}")) from None
    finally:
        loader.dispose()


class CatalogSyntaxError(Exception):
    """The file is not YAML at all (one problem, with its line)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


# -- field checks: each returns a message (Chinese, for the operator) or None ------------


def _text(max_len: int, *, required: bool = True) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"应为文字, 而不是 {_show(value)}"
        if required and not value.strip():
            return "不能为空"
        if len(value) > max_len:
            return f"不能超过 {max_len} 个字符 (现有 {len(value)})"
        return None

    return check


def _one_of(allowed: Iterable[str], what: str) -> Check:
    options = tuple(allowed)

    def check(value: Any) -> str | None:
        if value in options:
            return None
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1)
            hint = f" (是否想写 {close[0]}?)" if close else ""
        return f"{what}应为 {' | '.join(options)} 之一, 而不是 {_show(value)}{hint}"

    return check


def _days(value: Any) -> str | None:
    if type(value) is not int or value < 0:
        return f"应为不小于 0 的整数天数, 而不是 {_show(value)}"
    return None


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"应为 true 或 false, 而不是 {_show(value)}"


def _dept(value: Any) -> str | None:
    if isinstance(value, str) and DEPT_RE.match(value):
        return None
    return f"应为部门代码 (小写字母开头, 如 sfj、scjgj), 而不是 {_show(value)}"


def _type(value: Any) -> str | None:
    if value in MATTER_TYPES:
        return None
    return f"事项类型应为 01..20 (01 行政许可 … 20 公共服务), 而不是 {_show(value)}" + (
        ' (YAML 里请加引号: type: "01")' if isinstance(value, int) else ""
    )


def _show(value: Any) -> str:
    if value is None:
        return "空值"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


MATTER_FIELDS: dict[str, tuple[bool, Check | None]] = {
    "code": (True, _text(50)),
    "name": (True, _text(200)),
    "type": (True, _type),
    "basis": (True, _text(2000)),
    "authority": (True, _dept),
    "level": (True, _one_of(DECIDING_LEVELS, "办理层级")),
    "kind": (True, _one_of(KINDS, "办件类型")),
    "promise_days": (True, _days),
    "promise_unit": (False, _one_of(UNITS, "期限单位")),
    "legal_days": (True, _days),
    "scope": (True, _one_of(SCOPES, "通办范围")),
    "materials": (False, None),
    "steps": (False, None),
    "delegated_to": (False, None),
    "result": (False, None),
    "fee": (False, _text(500, required=False)),
    "theme": (False, _text(100, required=False)),
    "conditions": (False, _text(2000, required=False)),
    "place": (False, _text(500, required=False)),
}
MATERIAL_FIELDS: dict[str, tuple[bool, Check | None]] = {
    "id": (True, _text(50)),
    "name": (True, _text(200)),
    "required": (False, _flag),
    "originals": (False, _flag),
    "deferrable": (False, _flag),
    "pledgeable": (False, _flag),
    "licence_type": (False, _text(50, required=False)),
}
STEP_FIELDS: dict[str, tuple[bool, Check | None]] = {
    "name": (True, _text(200)),
    "role": (True, _text(200)),
}
RESULT_FIELDS: dict[str, tuple[bool, Check | None]] = {
    "name": (False, _text(200, required=False)),
    "type": (False, _text(50, required=False)),
}
BUNDLE_FIELDS: dict[str, tuple[bool, Check | None]] = {
    "code": (True, _text(50)),
    "name": (True, _text(200)),
    "matters": (True, None),
}
TOP_FIELDS = ("matters", "bundles")


class _Checker:
    def __init__(self, authorities: Iterable[str], members: Iterable[str]) -> None:
        self.authorities = set(authorities)
        self.members = set(members)
        self.result = CatalogCheck()

    def problem(self, line: int, where: str, message: str) -> None:
        self.result.problems.append(Problem(line, where, message))

    def warn(self, line: int, where: str, message: str) -> None:
        self.result.warnings.append(Problem(line, where, message))

    def mapping(
        self, loc: Located, where: str, fields: Mapping[str, tuple[bool, Check | None]]
    ) -> bool:
        """Check a mapping's own fields; True when it is a mapping at all."""
        if not isinstance(loc.value, dict):
            self.problem(loc.line, where, f"应为键值对 (key: value), 而不是 {_show(loc.value)}")
            return False
        for key in loc.value:
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f"; 是否想写 {close[0]}?" if close else ""
                self.problem(
                    loc.key_lines.get(str(key), loc.line), f"{where}.{key}", f"未知字段{hint}"
                )
        for name, (required, check) in fields.items():
            if name not in loc.value:
                if required:
                    self.problem(loc.line, where, f"缺少必填字段 {name}")
                continue
            if check is not None:
                message = check(loc.value[name])
                if message:
                    self.problem(loc.line_of(name), f"{where}.{name}", message)
        return True

    def items(self, loc: Located, key: str, where: str) -> list[tuple[Located, str]]:
        """The located items of a list field (a problem when it is not a list)."""
        child = loc.child(key)
        path = f"{where}.{key}" if where else key
        if child is None:
            return []
        if not isinstance(child.value, list):
            self.problem(child.line, path, f"应为列表, 而不是 {_show(child.value)}")
            return []
        return [(child.children[i], f"{path}[{i}]") for i in range(len(child.value))]

    def matter(self, loc: Located, where: str) -> dict[str, Any] | None:
        before = len(self.result.problems)
        if isinstance(loc.value, dict):
            number = loc.value.get("type")
            if type(number) is int and 1 <= number <= 20:
                # YAML reads an unquoted 01 as the integer 1; the operator meant "01".
                loc.value["type"] = f"{number:02d}"
        if not self.mapping(loc, where, MATTER_FIELDS):
            return None
        obj = loc.value
        ids: dict[str, int] = {}
        for item, item_where in self.items(loc, "materials", where):
            if self.mapping(item, item_where, MATERIAL_FIELDS):
                mid = item.value.get("id")
                if isinstance(mid, str) and mid in ids:
                    self.problem(item.line_of("id"), f"{item_where}.id", f"材料编号 {mid!r} 重复")
                if isinstance(mid, str):
                    ids.setdefault(mid, item.line)
        for item, item_where in self.items(loc, "steps", where):
            self.mapping(item, item_where, STEP_FIELDS)
        for item, item_where in self.items(loc, "delegated_to", where):
            target = item.value
            if target in LEVEL_ORDER:
                continue
            if not isinstance(target, str) or not MEMBER_RE.match(target):
                self.problem(
                    item.line,
                    item_where,
                    f"应为层级 ({' | '.join(LEVEL_ORDER)}) 或成员代码, 而不是 {_show(target)}",
                )
            elif target not in self.members:
                self.warn(item.line, item_where, f"{target} 还不是联邦成员")
        result = loc.child("result")
        if result is not None:
            self.mapping(result, f"{where}.result", RESULT_FIELDS)
        self._cross_checks(loc, where, obj)
        if len(self.result.problems) > before:
            return None
        try:
            matter = Matter.parse(obj, where)
        except ProtocolError as exc:  # a rule this checker does not know: still reported
            self.problem(loc.line, where, exc.detail or exc.reason)
            return None
        return matter.to_dict()

    def _cross_checks(self, loc: Located, where: str, obj: Mapping[str, Any]) -> None:
        promise, legal, kind = obj.get("promise_days"), obj.get("legal_days"), obj.get("kind")
        if type(promise) is int and type(legal) is int and legal < promise:
            self.problem(
                loc.line_of("legal_days"),
                f"{where}.legal_days",
                f"法定期限 {legal} 短于承诺期限 {promise}",
            )
        if kind == "即办件" and type(promise) is int and promise != 0:
            self.problem(
                loc.line_of("promise_days"),
                f"{where}.promise_days",
                f"即办件的承诺期限应为 0, 而不是 {promise}",
            )
        dept, level = obj.get("authority"), obj.get("level")
        if (
            isinstance(dept, str)
            and DEPT_RE.match(dept)
            and level in DECIDING_LEVELS
            and not any(
                a.split(":", 1)[1] == dept and level_of(a.split(":", 1)[0]) == level
                for a in self.authorities
            )
        ):
            self.problem(
                loc.line_of("authority"),
                f"{where}.authority",
                f"联邦中没有{_LEVEL_NAMES[str(level)]}级部门 {dept}"
                " (先批准其所在枢纽的入网申请, 或 authority add <枢纽>:<部门>)",
            )
        if obj.get("delegated_to") and kind == "承诺件":
            self.warn(
                loc.line_of("delegated_to"),
                f"{where}.delegated_to",
                "下放窗口当场办结的事项通常是即办件, 这里是承诺件",
            )
        if kind == "即办件":
            for item, item_where in self.items(loc, "materials", where):
                if isinstance(item.value, dict) and item.value.get("deferrable") is True:
                    self.warn(
                        item.line_of("deferrable"),
                        f"{item_where}.deferrable",
                        "即办件当场办结, 容缺补交的期限无从设定",
                    )

    def bundle(self, loc: Located, where: str, codes: set[str]) -> dict[str, Any] | None:
        before = len(self.result.problems)
        if not self.mapping(loc, where, BUNDLE_FIELDS):
            return None
        items = self.items(loc, "matters", where)
        if loc.child("matters") is not None and isinstance(loc.value["matters"], list):
            if len(items) < 2:
                self.problem(loc.line_of("matters"), f"{where}.matters", "一件事至少包含两个事项")
            listed: set[Any] = set()
            for item, item_where in items:
                if isinstance(item.value, str) and item.value in listed:
                    self.problem(item.line, item_where, f"事项 {item.value} 重复")
                listed.add(item.value if isinstance(item.value, str) else None)
                if item.value not in codes:
                    self.problem(item.line, item_where, f"目录中没有事项 {_show(item.value)}")
        if len(self.result.problems) > before:
            return None
        try:
            return Bundle.parse(loc.value, where).to_dict()
        except ProtocolError as exc:
            self.problem(loc.line, where, exc.detail or exc.reason)
            return None


_LEVEL_NAMES = {"city": "市", "district": "区县", "township": "乡镇街道"}


def check_catalog(
    text: str, authorities: Iterable[str], members: Iterable[str] = ()
) -> CatalogCheck:
    """Check a catalog file against the federation's authorities (ids like ``2101:sfj``).

    Every problem is listed with its line; ``matters`` and ``bundles`` hold the entries in
    config form and are complete only when there are no problems.
    """
    try:
        root = load_located(text)
    except CatalogSyntaxError as exc:
        return CatalogCheck(problems=[exc.problem])
    checker = _Checker(authorities, members)
    if not isinstance(root.value, dict):
        checker.problem(root.line, "catalog", "文件应以 matters: 开头 (事项列表)")
        return checker.result
    for key in root.value:
        if key not in TOP_FIELDS:
            checker.problem(
                root.key_lines.get(str(key), 1),
                "catalog",
                f"未知的顶层字段 {key!r} (应为 matters, bundles)",
            )
    if "matters" not in root.value:
        checker.problem(root.line, "catalog", "缺少 matters: (事项列表)")
    codes: dict[str, int] = {}
    for loc, where in checker.items(root, "matters", ""):
        code = loc.value.get("code") if isinstance(loc.value, dict) else None
        if isinstance(code, str):
            if code in codes:
                checker.problem(
                    loc.line_of("code"),
                    f"{where}.code",
                    f"事项编码 {code} 重复 (第 {codes[code]} 行已有)",
                )
            else:
                codes[code] = loc.line_of("code")
        matter = checker.matter(loc, where)
        if matter is not None:
            checker.result.matters.append(matter)
    seen: set[str] = set()
    for loc, where in checker.items(root, "bundles", ""):
        bundle = checker.bundle(loc, where, set(codes))
        if bundle is not None:
            if bundle["code"] in seen:
                checker.problem(loc.line_of("code"), f"{where}.code", f"编码 {bundle['code']} 重复")
                continue
            seen.add(bundle["code"])
            checker.result.bundles.append(bundle)
    checker.result.problems.sort(key=lambda p: p.line)
    checker.result.warnings.sort(key=lambda p: p.line)
    return checker.result
