"""`member revoke`, `member rotate-key`, `staff disable --at`, `staff reset`: what each stages,
their refusals and dry runs (in-process CLI; the effect on running members is in
tests/integration/test_operations.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher

from protocol.config import FederationConfig
from protocol.keys import KeyPair

from .conftest import VILLAGE_1, VILLAGE_2, Run, key, request, snapshot


def draft(fed_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((fed_dir / "federation.json").read_text("utf-8"))


def test_revoke_a_member(shenyang: Run, fed_dir: Path) -> None:
    before = snapshot(fed_dir)
    out = shenyang("member", "revoke", "210102001002", "--reason", "设备丢失", "--dry-run").output
    assert "revocations" in out and "演练" in out and snapshot(fed_dir) == before
    shenyang(
        "member", "revoke", "210102001002", "--at", "2026-11-23T12:00:00", "--reason", "设备丢失"
    )
    [revocation] = draft(fed_dir)["revocations"]
    assert revocation == {
        "member": "210102001002",
        "kid": None,
        "revoked_at": "2026-11-23T12:00:00+08:00",
        "reason": "设备丢失",
    }
    again = shenyang("member", "revoke", "210102001002", ok=False).output
    assert "已于 2026-11-23T12:00:00+08:00 吊销" in again
    assert "不能吊销城市枢纽" in shenyang("member", "revoke", "2101", ok=False).output
    assert "不是联邦成员" in shenyang("member", "revoke", "210102009009", ok=False).output
    assert (
        "--at 应为 ISO 8601"
        in shenyang("member", "revoke", "210102001001", "--at", "明天", ok=False).output
    )
    # A revoked member stays listed (its history must verify), shown as such.
    listed = shenyang("member", "list").output
    assert "吊销 2026-11-23T12:00:00+08:00" in listed
    shenyang("config", "sign")
    config = FederationConfig.parse(
        draft(fed_dir)
        | {
            "serial": 1,
            "issued": "2026-11-23T10:00:00+08:00",
            "expires": "2026-12-23T10:00:00+08:00",
        }
    )
    kid = key("210102001002").kid
    early = datetime.fromisoformat("2026-11-23T11:59:59+08:00")
    assert config.member_key("210102001002", kid, early) is not None
    try:
        config.member_key("210102001002", kid, datetime.fromisoformat("2026-11-23T12:00:00+08:00"))
    except Exception as exc:
        assert getattr(exc, "reason", None) == "key_revoked"
    else:
        raise AssertionError("a revoked key verified")


def test_rotate_a_key(shenyang: Run, fed_dir: Path, tmp_path: Path, clock: list[datetime]) -> None:
    old_kid = key("210102001001").kid
    new_request = request("210102001001", parent="210102", key_name="new 210102001001")
    before = snapshot(fed_dir)
    shenyang("member", "rotate-key", "210102001001", "--request", new_request, "--dry-run")
    assert snapshot(fed_dir) == before
    out = shenyang("member", "rotate-key", "210102001001", "--request", new_request).output
    assert f"旧密钥 {old_kid[:12]} 有效至 2026-11-23T10:00:00+08:00" in out
    member = next(m for m in draft(fed_dir)["members"] if m["id"] == "210102001001")
    assert [(k["kid"], k["valid_until"]) for k in member["keys"]] == [
        (old_kid, "2026-11-23T10:00:00+08:00"),
        (key("new 210102001001").kid, None),
    ]
    # Refusals: someone else's request, a key already in use, no key given, both given.
    assert (
        "不是 210102001002 的"
        in shenyang(
            "member", "rotate-key", "210102001002", "--request", new_request, ok=False
        ).output
    )
    assert (
        "已属于成员 210102001001"
        in shenyang(
            "member", "rotate-key", "210102001001", "--request", new_request, ok=False
        ).output
    )
    assert "之一" in shenyang("member", "rotate-key", "210102001001", ok=False).output
    # A bare public key file works too (a key made with `member request` elsewhere).
    pub = tmp_path / "new.pub"
    pub.write_text(key("third 210102001002").public.to_text() + "\n")
    shenyang("member", "rotate-key", "210102001002", "--key-file", str(pub))
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    assert (
        "不是有效的公钥"
        in shenyang("member", "rotate-key", "210102001002", "--key-file", str(bad), ok=False).output
    )
    shenyang("member", "revoke", "210102001002")
    assert (
        "已被吊销"
        in shenyang("member", "rotate-key", "210102001002", "--request", VILLAGE_2, ok=False).output
    )
    assert VILLAGE_1  # the original request stays unusable: its key is now retired
    shenyang("config", "sign")


def test_staff_disable_at_and_reset(shenyang: Run, fed_dir: Path, tmp_path: Path) -> None:
    shenyang("staff", "add", "--id", "hp-mzj-li", "--name", "李审核", "--member", "210102",
             "--department", "mzj", "--role", "reviewer")  # fmt: skip
    shenyang("staff", "add", "--id", "cun-zhao", "--name", "赵窗口", "--member", "210102001001",
             "--role", "clerk")  # fmt: skip
    shenyang("staff", "disable", "--id", "hp-mzj-li", "--at", "2026-11-24T09:00:00+08:00")
    entry = next(s for s in draft(fed_dir)["staff"] if s["id"] == "hp-mzj-li")
    assert (entry["active"], entry["disabled_at"]) == (False, "2026-11-24T09:00:00+08:00")
    assert "已停用" in shenyang("staff", "reset", "--id", "hp-mzj-li", ok=False).output
    shenyang("staff", "enable", "--id", "hp-mzj-li")
    entry = next(s for s in draft(fed_dir)["staff"] if s["id"] == "hp-mzj-li")
    assert entry["active"] and "disabled_at" not in entry

    before = snapshot(fed_dir)
    shenyang("staff", "reset", "--id", "hp-mzj-li", "--dry-run")
    assert snapshot(fed_dir) == before
    secret = tmp_path / "pw.txt"
    shenyang("staff", "reset", "--id", "hp-mzj-li", "--password-file", str(secret))
    password = secret.read_text().strip()
    assert secret.stat().st_mode & 0o777 == 0o600 and len(password) >= 12
    entry = next(s for s in draft(fed_dir)["staff"] if s["id"] == "hp-mzj-li")
    assert (entry["department"], entry["roles"]) == ("mzj", ["reviewer"])
    assert PasswordHasher().verify(entry["password_reset"]["hash"], password)
    printed = shenyang("staff", "reset", "--id", "hp-mzj-li").output
    assert "的新密码: " in printed
    assert "tongban node passwd" in shenyang("staff", "reset", "--id", "cun-zhao", ok=False).output
    assert "没有工作人员" in shenyang("staff", "reset", "--id", "nobody", ok=False).output
    shenyang("config", "sign")  # members accept what was staged


def test_entrust_a_seal_key_to_windows(shenyang: Run, fed_dir: Path, tmp_path: Path) -> None:
    """即办: 210102:mzj entrusts a seal key to two village windows (印章授权使用)."""
    stations = [tmp_path / "node-1", tmp_path / "node-2"]
    data = [a for s in stations for a in ("--data", str(s))]
    before = snapshot(fed_dir)
    shenyang("authority", "entrust", "210102:mzj", *data, "--dry-run")
    assert snapshot(fed_dir) == before and not stations[0].exists()
    shenyang("authority", "entrust", "210102:mzj", *data)
    files = [s / "seals" / "210102-mzj.key" for s in stations]
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in files)
    keys = {KeyPair.from_file_bytes(f.read_bytes()).public.to_text() for f in files}
    [auth] = [a for a in draft(fed_dir)["authorities"] if a["id"] == "210102:mzj"]
    assert keys < {k["public"] for k in auth["seal_keys"]} and len(auth["seal_keys"]) == 3
    # Refusals: an unknown authority, a window already holding that authority's key.
    assert "没有部门" in shenyang("authority", "entrust", "210102:xyz", *data, ok=False).output
    again = shenyang("authority", "entrust", "210102:mzj", "--data", str(stations[0]), ok=False)
    assert "已存在" in again.output
    shenyang("config", "sign")
