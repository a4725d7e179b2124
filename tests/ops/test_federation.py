"""A federation from nothing with the operator commands only, and their refusals."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

from ops.federation import FederationDir
from protocol.config import accept_config, parse_signed
from protocol.encoding import loads_strict
from protocol.keys import KeyPair, PublicKey

from .conftest import (
    CITY_HUB,
    EXAMPLES,
    HEPING_HUB,
    PASSPHRASE,
    VILLAGE_1,
    Run,
    key,
    request,
    snapshot,
)


def signed_json(fed_dir: Path, name: str = "current.json") -> dict[str, object]:
    data = loads_strict((fed_dir / name).read_bytes())
    assert isinstance(data, dict)
    return data


def test_a_federation_from_nothing(shenyang: Run, fed_dir: Path, clock: list[datetime]) -> None:
    run = shenyang
    run(
        "staff",
        "add",
        "--id",
        "hp-mzj-li",
        "--name",
        "李审核",
        "--member",
        "210102",
        "--department",
        "mzj",
        "--role",
        "acceptor",
        "--role",
        "reviewer",
    )
    run(
        "staff",
        "add",
        "--id",
        "sy-sfj-wang",
        "--name",
        "王签发",
        "--member",
        "2101",
        "--department",
        "sfj",
        "--role",
        "signer",
    )
    run(
        "staff",
        "add",
        "--id",
        "cun-zhang",
        "--name",
        "张窗口",
        "--member",
        "210102001001",
        "--role",
        "clerk",
    )
    out = run("config", "sign", "--expires-days", "30").output
    assert "已签发 serial 1" in out

    # The files of the operator directory (docs/architecture.md).
    assert stat.S_IMODE(os.stat(fed_dir / "root.key").st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (fed_dir / "root.key").read_bytes()
    assert (fed_dir / "signed" / "1.json").read_bytes() == (fed_dir / "current.json").read_bytes()

    # The signed config verifies with the root public key and parses.
    root = KeyPair.from_file_bytes((fed_dir / "root.key").read_bytes(), PASSPHRASE.encode())
    printed = run("federation", "root-key").output.split()[0]
    assert PublicKey.from_text(printed) == root.public
    signed = parse_signed(signed_json(fed_dir))
    assert accept_config(None, signed, [root.public]) is signed
    config = signed.config
    assert (config.federation, config.name, config.serial) == ("2101", "沈阳市", 1)
    assert config.expires - config.issued == timedelta(days=30)
    assert sorted(config.members) == ["2101", "210102", "210102001001", "210102001002"]
    assert config.members["210102"].roles == {"hub", "station"}
    assert config.members["210102001001"].parent == "210102"
    assert config.members["210102"].keys[0].key == key("210102").public
    assert config.authorities["2101:sfj"].name == "沈阳市司法局"
    assert config.authorities["2101:sfj"].seal_keys[0].key == key("seal 2101:sfj").public
    assert config.authorities["210102:mzj"].name == "和平区民政局"
    lawyer = config.catalog["SY-SFJ-LS-01"]
    assert lawyer.name == "律师执业申请" and [s.name for s in lawyer.steps] == [
        "受理审查",
        "审核",
        "签发",
    ]
    nocrime = lawyer.material("nocrime")
    assert nocrime is not None and nocrime.pledgeable  # 告知承诺
    assert config.catalog["HP-WJJ-DS-01"].delegated("210102001001")
    assert config.bundles["YJS-QYKB"].name == "企业开办"
    assert config.staff["hp-mzj-li"].roles == ("acceptor", "reviewer")
    assert config.calendar.knows(2026)

    # config show
    out = run("config", "show", "--catalog").output
    assert "签名: 有效" in out and "律师执业申请" in out and "210102001002" in out
    shown = json.loads(run("config", "show", "--json").output)
    assert shown == signed_json(fed_dir)

    # A second config: a change, signed later, diffed against the first.
    clock[0] += timedelta(days=1)
    run("staff", "disable", "--id", "cun-zhang")
    run(
        "member",
        "approve",
        request(
            "210106",
            "hub",
            "2101",
            name="铁西区政务服务中心",
            endpoint="http://127.0.0.1:8402/",
            seals=["mzj"],
        ),
    )
    pending = run("config", "diff", "current", "draft").output
    assert "+ 210106 铁西区政务服务中心" in pending and "~ serial" not in pending
    out = run("config", "sign").output
    assert "已签发 serial 2" in out
    second = parse_signed(signed_json(fed_dir))
    assert accept_config(signed, second) is second
    diff = run("config", "diff").output
    assert "--- serial 1" in diff and "+++ serial 2" in diff
    assert "+ 210106 铁西区政务服务中心" in diff
    assert "+ 210106:mzj mzj" in diff
    assert "~ cun-zhang: active: true → false" in diff
    assert "~ serial: 1 → 2" in diff
    assert run("config", "diff", "1", "1").output.endswith("没有差别 (no difference).\n")
    assert "serial 1" in run("config", "show", "--serial", "1").output


def test_sign_refuses_a_wrong_passphrase_and_changes_nothing(shenyang: Run, fed_dir: Path) -> None:
    before = snapshot(fed_dir)
    result = shenyang("config", "sign", ok=False, env={"TONGBAN_ROOT_PASSPHRASE": "wrong"})
    assert "口令错误" in result.output
    assert snapshot(fed_dir) == before
    # The prompt path: no environment variable, the passphrase typed once.
    result = shenyang(
        "config", "sign", env={"TONGBAN_ROOT_PASSPHRASE": None}, input=PASSPHRASE + "\n"
    )
    assert "已签发 serial 1" in result.output


def test_init_passphrase_sources_and_refusals(run: Run, fed_dir: Path, tmp_path: Path) -> None:
    result = run(
        "federation",
        "init",
        "--city",
        "2101",
        "--name",
        "沈阳市",
        ok=False,
        env={"TONGBAN_ROOT_PASSPHRASE": ""},
    )
    assert "口令不能为空" in result.output
    assert not fed_dir.exists() or snapshot(fed_dir) == {}
    result = run(
        "federation",
        "init",
        "--city",
        "2101",
        "--name",
        "沈阳市",
        ok=False,
        env={"TONGBAN_ROOT_PASSPHRASE": None},
        input="a\nb\n",
    )
    assert not (fed_dir / "root.key").exists()
    passfile = tmp_path / "pass.txt"
    passfile.write_text("from a file\n")
    run(
        "federation",
        "init",
        "--city",
        "2101",
        "--name",
        "沈阳市",
        "--passphrase-file",
        str(passfile),
    )
    KeyPair.from_file_bytes((fed_dir / "root.key").read_bytes(), b"from a file")
    result = run("federation", "init", "--city", "2101", "--name", "沈阳市", ok=False)
    assert "已经有联邦" in result.output
    # Without the city hub nothing can be signed yet, and the message says why.
    result = run("config", "sign", ok=False)
    assert "城市枢纽 2101 尚未入网" in result.output
    run("member", "approve", CITY_HUB)
    assert "已签发 serial 1" in run("config", "sign", "--passphrase-file", str(passfile)).output


def test_insecure_no_passphrase_for_demos(run: Run, fed_dir: Path) -> None:
    run(
        "federation",
        "init",
        "--city",
        "2101",
        "--name",
        "沈阳市",
        "--insecure-no-passphrase",
        "--hub-enrolment",
        CITY_HUB,
        env={"TONGBAN_ROOT_PASSPHRASE": None},
    )
    assert b"ENCRYPTED" not in (fed_dir / "root.key").read_bytes()
    assert "serial 1" in run("config", "sign", env={"TONGBAN_ROOT_PASSPHRASE": None}).output


def test_member_approve_refusals(shenyang: Run, fed_dir: Path, tmp_path: Path) -> None:
    run = shenyang
    before = snapshot(fed_dir)
    assert "已经入网" in run("member", "approve", VILLAGE_1, ok=False).output
    # The same key under another id.
    twin = request("210102001003", parent="210102", key_name="210102001001")
    assert "这把密钥已属于成员 210102001001" in run("member", "approve", twin, ok=False).output
    orphan = request("210106001001", parent="210106")
    assert "上级 210106 还不是联邦成员" in run("member", "approve", orphan, ok=False).output
    assert (
        "不是枢纽"
        in run(
            "member", "approve", request("210102001001-2"), "--parent", "210102001001", ok=False
        ).output
    )
    other_city = request("210402", "hub", "2104")
    assert "不属于本联邦 2101" in run("member", "approve", other_city, ok=False).output
    tampered = VILLAGE_1[:-6] + ("AAAAAA" if not VILLAGE_1.endswith("AAAAAA") else "BBBBBB")
    assert "入网申请无效" in run("member", "approve", tampered, ok=False).output
    assert "找不到入网申请文件" in run("member", "approve", "no-such-file", ok=False).output
    assert snapshot(fed_dir) == before
    # A request from a file, with no parent in it: the nearest enrolled hub is taken.
    path = tmp_path / "req.txt"
    path.write_text(request("210102001005", name="示例村") + "\n")
    out = run("member", "approve", str(path)).output
    assert "取最近的已入网枢纽 210102" in out
    listing = run("member", "list").output
    assert "210102001005" in listing and "示例村" in listing and "共 5 个成员" in listing


def test_city_hub_must_come_first(run: Run) -> None:
    run("federation", "init", "--city", "2101", "--name", "沈阳市")
    assert "城市枢纽 2101 尚未入网" in run("member", "approve", HEPING_HUB, ok=False).output
    station_city = request("2101", "station", name="错误")
    assert "必须是枢纽" in run("member", "approve", station_city, ok=False).output


def test_dry_run_changes_nothing(shenyang: Run, fed_dir: Path, tmp_path: Path) -> None:
    run = shenyang
    run("config", "sign")
    before = snapshot(fed_dir)
    commands = [
        ["member", "approve", request("210106", "hub", "2101", endpoint="http://x.example/")],
        ["authority", "add", "2101:wjw", "--name", "沈阳市卫生健康委员会"],
        ["authority", "rename", "2101:gaj", "--name", "沈阳市公安局治安支队"],
        ["staff", "add", "--id", "a", "--name", "甲", "--member", "210102", "--role", "clerk"],
        ["catalog", "publish", str(EXAMPLES / "catalog.yaml")],
        ["calendar", "set", "--year", "2025"],
        ["calendar", "set", "--year", "2027", "--file", str(EXAMPLES / "holidays-2027.yaml")],
        [
            "peer",
            "add",
            "--city",
            "2104",
            "--name",
            "抚顺市",
            "--endpoint",
            "https://hub.fushun.example/",
            "--root-key",
            key("root 2104").public.to_text(),
        ],
        ["config", "sign"],
    ]
    for args in commands:
        out = run(*args, "--dry-run").output
        assert "演练" in out or "没有变化" in out, args
        assert snapshot(fed_dir) == before, args
    run("staff", "add", "--id", "a", "--name", "甲", "--member", "210102", "--role", "clerk")
    run(
        "peer",
        "add",
        "--city",
        "2104",
        "--name",
        "抚顺市",
        "--endpoint",
        "https://hub.fushun.example/",
        "--root-key",
        key("root 2104").public.to_text(),
    )
    before = snapshot(fed_dir)
    for args in (["staff", "disable", "--id", "a"], ["peer", "remove", "--city", "2104"]):
        assert "演练" in run(*args, "--dry-run").output
        assert snapshot(fed_dir) == before
    federation_new = tmp_path / "other"
    run(
        "federation",
        "init",
        "--city",
        "2104",
        "--name",
        "抚顺市",
        "--dir",
        str(federation_new),
        "--dry-run",
    )
    assert not federation_new.exists()
    requested = tmp_path / "station"
    run(
        "member",
        "request",
        "--id",
        "210102001009",
        "--name",
        "站",
        "--data",
        str(requested),
        "--dry-run",
    )
    assert not requested.exists()


def test_authorities_staff_peers_calendar(shenyang: Run, fed_dir: Path, tmp_path: Path) -> None:
    run = shenyang
    out = run("authority", "add", "210106:mzj", "--name", "铁西区民政局").output
    assert "尚未入网" in out
    assert "尚未入网" in run("config", "sign", ok=False).output  # 210106 is not enrolled
    run("authority", "remove", "210106:mzj", "--dry-run")
    assert "没有部门" in run("authority", "remove", "210106:xx", ok=False).output
    run(
        "staff",
        "add",
        "--id",
        "m",
        "--name",
        "民",
        "--member",
        "210102",
        "--department",
        "mzj",
        "--role",
        "reviewer",
    )
    assert "还有工作人员 m" in run("authority", "remove", "210102:mzj", ok=False).output
    assert "已存在" in run("authority", "add", "2101:sfj", "--name", "x", ok=False).output
    assert "应写作" in run("authority", "add", "2101-sfj", "--name", "x", ok=False).output
    run(
        "member",
        "approve",
        request("210106", "hub", "2101", endpoint="http://t.example/", seals=["mzj"]),
    )
    authorities = run("authority", "list").output
    assert "铁西区民政局" in authorities  # the name given first is kept

    assert (
        "不是联邦成员"
        in run(
            "staff",
            "add",
            "--id",
            "x",
            "--name",
            "x",
            "--member",
            "210103",
            "--role",
            "r",
            ok=False,
        ).output
    )
    assert (
        "没有部门 gaj"
        in run(
            "staff",
            "add",
            "--id",
            "x",
            "--name",
            "x",
            "--member",
            "210102",
            "--department",
            "gaj",
            "--role",
            "r",
            ok=False,
        ).output
    )
    run("staff", "add", "--id", "x", "--name", "某某", "--member", "210102", "--role", "clerk")
    assert (
        "已存在"
        in run(
            "staff",
            "add",
            "--id",
            "x",
            "--name",
            "x",
            "--member",
            "210102",
            "--role",
            "r",
            ok=False,
        ).output
    )
    run("staff", "disable", "--id", "x")
    assert "已经是停用" in run("staff", "disable", "--id", "x", ok=False).output
    assert "停用" in run("staff", "list").output
    run("staff", "enable", "--id", "x")

    fushun = key("root 2104").public.to_text()
    run(
        "peer",
        "add",
        "--city",
        "2104",
        "--name",
        "抚顺市",
        "--endpoint",
        "https://hub.fushun.example/",
        "--root-key",
        fushun,
    )
    assert (
        "已是伙伴"
        in run(
            "peer",
            "add",
            "--city",
            "2104",
            "--name",
            "抚顺市",
            "--endpoint",
            "https://x.example/",
            "--root-key",
            fushun,
            ok=False,
        ).output
    )
    assert (
        "不能是自己"
        in run(
            "peer",
            "add",
            "--city",
            "2101",
            "--name",
            "x",
            "--endpoint",
            "https://x.example/",
            "--root-key",
            fushun,
            ok=False,
        ).output
    )
    assert (
        "不是有效的公钥"
        in run(
            "peer",
            "add",
            "--city",
            "2103",
            "--name",
            "鞍山市",
            "--endpoint",
            "https://x.example/",
            "--root-key",
            "abc",
            ok=False,
        ).output
    )
    assert "2104" in run("peer", "list").output
    run("peer", "remove", "--city", "2104")
    assert "不是都市圈伙伴" in run("peer", "remove", "--city", "2104", ok=False).output

    out = run("calendar", "set", "--year", "2030", ok=False).output
    assert "没有 2030 年" in out and "--file" in out
    run("calendar", "set", "--year", "2027", "--file", str(EXAMPLES / "holidays-2027.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("year: 2028\nholidays: [2028-01-01]\n")
    assert "2028" in run("calendar", "set", "--year", "2029", "--file", str(bad), ok=False).output
    bad.write_text("holidays: [2029-01-01]\nworkdays: [2029-01-01]\n")
    assert (
        "本来就是工作日"
        in run("calendar", "set", "--year", "2029", "--file", str(bad), ok=False).output
    )
    assert "2027: 节假日 2027-01-01" in run("calendar", "show").output
    run("config", "sign")
    config = parse_signed(signed_json(fed_dir)).config
    assert config.calendar.knows(2027) and not config.calendar.is_workday(
        datetime(2027, 10, 4).date()
    )
    assert config.calendar.is_workday(datetime(2027, 10, 9).date())  # a 调休 Saturday


def test_peer_from_a_partner_config(shenyang: Run, fed_dir: Path, tmp_path: Path) -> None:
    """抚顺's operator hands over their signed config; 沈阳 takes root keys and endpoint from it."""
    fushun = tmp_path / "fushun"
    shenyang(
        "federation",
        "init",
        "--city",
        "2104",
        "--name",
        "抚顺市",
        "--dir",
        str(fushun),
        "--hub-enrolment",
        request("2104", "hub", endpoint="https://hub.fushun.example/"),
    )
    shenyang("config", "sign", "--dir", str(fushun))
    shenyang("peer", "add", "--from-config", str(fushun / "current.json"))
    shenyang("config", "sign")
    peer = parse_signed(signed_json(fed_dir)).config.peers["2104"]
    assert (peer.name, peer.endpoint) == ("抚顺市", "https://hub.fushun.example/")
    fushun_signed = parse_signed(signed_json(fushun))
    fushun_signed.verify(g.key for g in peer.root_keys)


def test_member_request_writes_keys(run: Run, tmp_path: Path, fed_dir: Path) -> None:
    data = tmp_path / "hub"
    text = run(
        "member",
        "request",
        "--id",
        "2101",
        "--role",
        "hub",
        "--name",
        "沈阳市政务服务中心",
        "--endpoint",
        "http://127.0.0.1:8400/",
        "--seal",
        "sfj",
        "--data",
        str(data),
    ).output
    assert text.startswith("TBENROL1.")
    assert stat.S_IMODE(os.stat(data / "member.key").st_mode) == 0o600
    assert (data / "seals" / "sfj.key").exists()
    assert (
        "已存在"
        in run(
            "member",
            "request",
            "--id",
            "2101",
            "--role",
            "hub",
            "--name",
            "x",
            "--data",
            str(data),
            ok=False,
        ).output
    )
    run("federation", "init", "--city", "2101", "--name", "沈阳市", "--hub-enrolment", text.strip())
    member_key = KeyPair.from_file_bytes((data / "member.key").read_bytes())
    draft = FederationDir(fed_dir).load_draft()
    assert draft["members"][0]["keys"][0]["public"] == member_key.public.to_text()


def test_signed_files_are_never_overwritten(shenyang: Run, fed_dir: Path) -> None:
    shenyang("config", "sign")
    first = (fed_dir / "signed" / "1.json").read_bytes()
    (fed_dir / "current.json").unlink()  # lost: the next serial still follows signed/
    assert "已签发 serial 2" in shenyang("config", "sign").output
    assert (fed_dir / "signed" / "1.json").read_bytes() == first
    assert "只更新序号和有效期" in shenyang("config", "sign", "--dry-run").output
    (fed_dir / "signed" / "3.json").write_text("{}")  # someone else's file in the way
    before = snapshot(fed_dir)
    out = shenyang("config", "sign", ok=False).output
    assert "不是最新的已签发序号 3" in out
    assert snapshot(fed_dir) == before


def test_help_for_every_command(run: Run) -> None:
    import click

    from ops.cli import ops

    seen = []
    for name, group in ops.commands.items():
        assert isinstance(group, click.Group)
        for command in group.commands:
            assert "Usage:" in run(name, command, "--help").output
            seen.append(f"{name} {command}")
    for command in ("member revoke", "member rotate-key", "member list", "staff reset"):
        assert command in seen
    assert "沈阳市" in run("federation", "init", "--help").output


def test_no_federation_here(run: Run) -> None:
    assert "federation init" in run("member", "list", ok=False).output
