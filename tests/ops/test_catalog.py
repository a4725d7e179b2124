"""``catalog publish``: every problem of a catalog file, each with its line."""

from __future__ import annotations

import re
from pathlib import Path

from ops.catalog import check_catalog
from protocol.config import Matter

from .conftest import EXAMPLES, Run, snapshot

AUTHORITIES = ["2101:sfj", "2101:scjgj", "210102:mzj"]

# Five deliberate mistakes, marked with the line they are on (two in the same matter).
FIVE_MISTAKES = """\
matters:
  - code: SY-SFJ-LS-01
    name: 律师执业申请
    type: "21"                      # 1: no such matter type
    basis: 《中华人民共和国律师法》
    authority: sfj
    level: city
    kind: 承诺件
    promise_days: 10
    legal_days: 20
    scope: province                 # 2: no such scope
    materials:
      - {id: form, name: 申请表}
      - {id: nocrime, pledgeable: true}    # 3: a material without a name
  - code: SY-SCJ-SP-01
    name: 食品经营许可
    type: "01"
    basis: 《中华人民共和国食品安全法》
    authority: scjgj
    level: city
    kind: 即办件
    promise_days: 5                 # 4: a 即办件 is decided at once
    legal_days: 20
    scope: metro
  - code: SY-JTJ-WY-01
    name: 网络预约出租汽车驾驶员从业资格证核发
    type: "01"
    basis: 《网络预约出租汽车经营服务管理暂行办法》
    authority: jtj                  # 5: no district authority jtj in the federation
    level: district
    kind: 承诺件
    promise_days: 5
    legal_days: 20
    scope: metro
"""
MISTAKE_LINES = [4, 11, 14, 22, 29]


def test_five_mistakes_are_all_named_with_their_lines() -> None:
    result = check_catalog(FIVE_MISTAKES, AUTHORITIES)
    assert [p.line for p in result.problems] == MISTAKE_LINES
    messages = [p.message for p in result.problems]
    assert "01..20" in messages[0]
    assert "province" in messages[1]
    assert "name" in messages[2]
    assert "即办件" in messages[3]
    assert "jtj" in messages[4]
    assert result.matters == []  # the one good matter is not staged alone


def test_publish_prints_all_five_and_stages_nothing(
    shenyang: Run, fed_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(FIVE_MISTAKES, "utf-8")
    before = snapshot(fed_dir)
    result = shenyang("catalog", "publish", str(path), ok=False)
    lines = sorted(int(m) for m in re.findall(rf"{re.escape(str(path))}:(\d+):", result.output))
    assert lines == MISTAKE_LINES
    assert "5 个问题" in result.output
    assert snapshot(fed_dir) == before


def test_more_kinds_of_problem() -> None:
    text = """\
matters:
  - code: A
    name: 甲
    type: 1
    basis: x
    authority: sfj
    level: city
    kind: 承诺件
    promise_days: 5
    legal_days: 3
    scope: city
    delegate_to: [village]
    materials: not a list
  - code: A
    name: 乙
    type: "02"
    basis: x
    authority: SFJ
    level: town
    kind: 即办件
    promise_days: 0
    legal_days: 0
    scope: city
    steps: [{name: 审核}]
    delegated_to: [villages]
  - just a string
bundles:
  - code: B
    name: 一件事
    matters: [A, NOPE]
extra: 1
"""
    result = check_catalog(text, AUTHORITIES)
    got = [(p.line, p.where) for p in result.problems]
    assert (10, "matters[0].legal_days") in got  # legal < promise
    assert (12, "matters[0].delegate_to") in got  # unknown field, with a suggestion
    assert any("delegated_to" in p.message for p in result.problems if p.line == 12)
    assert (13, "matters[0].materials") in got
    assert (14, "matters[1].code") in got  # duplicate code
    assert (18, "matters[1].authority") in got
    assert (19, "matters[1].level") in got
    assert any(p.line == 24 and "role" in p.message for p in result.problems)
    assert (25, "matters[1].delegated_to[0]") in got
    assert (26, "matters[2]") in got
    assert (30, "bundles[0].matters[1]") in got
    assert any(p.line == 31 and "extra" in p.message for p in result.problems)
    assert any("加引号" in p.message for p in check_catalog("matters: [{type: 21}]", []).problems)


def test_unquoted_type_is_read_as_meant_and_warnings() -> None:
    text = """\
matters:
  - {code: A, name: 甲, type: 01, basis: x, authority: mzj, level: district, kind: 承诺件,
     promise_days: 1, legal_days: 2, scope: district, delegated_to: [village, "210102009009"],
     materials: [{id: a, name: b, deferrable: true}]}
"""
    result = check_catalog(text, AUTHORITIES, members=["210102"])
    assert result.problems == []
    assert result.matters[0]["type"] == "01"
    warned = [p.message for p in result.warnings]
    assert any("承诺件" in m for m in warned) and any("210102009009" in m for m in warned)
    Matter.parse(result.matters[0], "check")


def test_syntax_error_has_a_line() -> None:
    result = check_catalog("matters:\n  - code: A\n   name: [unclosed\n", AUTHORITIES)
    assert len(result.problems) == 1 and result.problems[0].line == 3
    assert "语法错误" in result.problems[0].message
    assert check_catalog("", AUTHORITIES).problems[0].message.startswith("文件应以")


def test_the_example_catalog_is_valid() -> None:
    authorities = [f"2101:{d}" for d in ("sfj", "jtj", "gaj", "scjgj", "swj", "rsj")] + [
        f"210102:{d}" for d in ("mzj", "wjj", "scjgj")
    ]
    result = check_catalog((EXAMPLES / "catalog.yaml").read_text("utf-8"), authorities)
    assert result.problems == [] and result.warnings == []
    kinds = {m["kind"] for m in result.matters}
    assert kinds == {"即办件", "承诺件"}
    materials = [x for m in result.matters for x in m["materials"]]
    assert any(x["deferrable"] for x in materials) and any(x["pledgeable"] for x in materials)
    assert {m["scope"] for m in result.matters} == {"district", "city", "metro"}
    assert [b["name"] for b in result.bundles] == ["企业开办"]
