"""``tongban verify``: a sealed result checked offline against a config file or a data dir.

A genuine result verifies; one flipped byte, a revoked seal key or an expired one does not,
each with a clear message and exit status 1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ops.main import tongban
from protocol.config import FederationConfig, sign_config
from protocol.seal import result_text, seal_result
from tests.hub.fed import HP_MZJ, Fed, key, make_data_dir
from tests.protocol.fed import CITY, FS_CITY, FS_SFJ, fushun_dict, shenyang_dict

SEAL = key(f"seal {HP_MZJ}")
DOC: dict[str, Any] = {
    "case": "210102001001-20261123-0007",
    "matter": "SY-MZJ-JZ-02",
    "matter_name": "临时救助审批",
    "applicant": {"name": "张三", "id_masked": "2101**********1234"},
    "result_code": 0,
    "decision": "准予",
    "licence_no": "和民救 2026-0007",
    "valid_until": "2027-11-22",
    "authority": HP_MZJ,
    "authority_name": "部门 210102:mzj",
    "issued": "2026-11-24T10:00:00+08:00",
}


def write_config(path: Path, fed: Fed, change: Any = None) -> Path:
    config = fed.config_dict()
    if change is not None:
        change(config)
    signed = sign_config(FederationConfig.parse(config), key("root 2101"))
    path.write_text(json.dumps(signed.to_dict(), ensure_ascii=False), "utf-8")
    return path


def signed_dict(config: dict[str, Any], root_city: str) -> dict[str, Any]:
    return sign_config(FederationConfig.parse(config), key(f"root {root_city}")).to_dict()


def run(*args: str) -> Result:
    return CliRunner().invoke(tongban, ["verify", *args], catch_exceptions=False)


def test_a_genuine_result_verifies_from_a_file_and_as_qr_text(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", Fed())
    sealed = seal_result(DOC, SEAL)
    doc_file = tmp_path / "result.json"
    doc_file.write_text(json.dumps(sealed, ensure_ascii=False), "utf-8")
    result = run(str(doc_file), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "真实有效" in result.output and "部门 210102:mzj（210102:mzj）" in result.output
    assert "盖章时印章密钥有效" in result.output and "第 1 版" in result.output
    result = run(result_text(sealed), "--config", str(config))
    assert result.exit_code == 0 and "真实有效" in result.output


def test_one_flipped_byte_fails(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", Fed())
    text = json.dumps(seal_result(DOC, SEAL), ensure_ascii=False)
    at = text.index("2026-0007") + 8
    flipped = text[:at] + "8" + text[at + 1 :]  # 和民救 2026-0007 → 2026-0008
    path = tmp_path / "result.json"
    path.write_text(flipped, "utf-8")
    result = run(str(path), "--config", str(config))
    assert result.exit_code == 1
    assert "核验未通过" in result.output and "盖章后被改动过" in result.output


def test_a_revoked_seal_key_fails(tmp_path: Path) -> None:
    revoked = {"member": "210102", "kid": SEAL.kid, "revoked_at": "2026-11-01T00:00:00+08:00"}
    config = write_config(tmp_path / "config.json", Fed(revocations=[revoked]))
    result = run(result_text(seal_result(DOC, SEAL)), "--config", str(config))
    assert result.exit_code == 1
    assert "核验未通过" in result.output and "已被吊销" in result.output


def test_an_expired_seal_key_fails(tmp_path: Path) -> None:
    def expire(config: dict[str, Any]) -> None:
        [mzj] = [a for a in config["authorities"] if a["id"] == HP_MZJ]
        mzj["seal_keys"][0]["valid_until"] = "2026-06-30T00:00:00+08:00"

    config = write_config(tmp_path / "config.json", Fed(), expire)
    result = run(result_text(seal_result(DOC, SEAL)), "--config", str(config))
    assert result.exit_code == 1
    assert "核验未通过" in result.output and "不在有效期内" in result.output


def test_the_config_is_found_in_a_hub_data_dir_and_checked_against_its_roots(
    tmp_path: Path,
) -> None:
    make_data_dir(tmp_path / "hub", "210102")
    text = result_text(seal_result(DOC, SEAL))
    result = run(text, "--data", str(tmp_path / "hub"))
    assert result.exit_code == 0, result.output
    assert "数据目录信任的根密钥" in result.output
    # A config signed by another root than the hub trusts is not used at all.
    other = Fed().config_dict()
    other["root_keys"] = [{"public": key("rogue").public.to_text(), "valid_from": other["issued"]}]
    signed = sign_config(FederationConfig.parse(other), key("rogue"))
    (tmp_path / "hub" / "config.json").write_text(json.dumps(signed.to_dict()), "utf-8")
    result = run(text, "--data", str(tmp_path / "hub"))
    assert result.exit_code == 1 and "根签名无效" in result.output
    result = run(text, "--data", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "找不到联邦配置" in result.output


def test_garbage_is_not_a_result(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", Fed())
    for text in ("TBRES1.!!!", '{"type": "tongban.result"}', "hello"):
        result = run(text, "--config", str(config))
        assert result.exit_code == 1 and "核验未通过" in result.output, text


def test_a_result_sealed_in_a_metro_peer_city_verifies_against_its_config(
    tmp_path: Path,
) -> None:
    """A 抚顺 (2104) authority's result: unknown with the 沈阳 config alone; genuine with
    抚顺's config signed by the root key the 沈阳 config lists for it, naming the city."""
    home = tmp_path / "home.json"
    home.write_text(json.dumps(signed_dict(shenyang_dict(), CITY), ensure_ascii=False), "utf-8")
    peer = tmp_path / "fushun.json"
    peer.write_text(json.dumps(signed_dict(fushun_dict(), FS_CITY), ensure_ascii=False), "utf-8")
    doc = {**DOC, "authority": FS_SFJ, "authority_name": f"部门 {FS_SFJ}"}
    text = result_text(seal_result(doc, key(f"seal {FS_SFJ}")))

    alone = run(text, "--config", str(home))
    assert alone.exit_code == 1 and "签发部门不在联邦配置中" in alone.output
    assert "都市圈伙伴城市" in alone.output  # says what is missing
    result = run(text, "--config", str(home), "--peer-config", str(peer))
    assert result.exit_code == 0, result.output
    assert "真实有效" in result.output and f"部门 {FS_SFJ}（{FS_SFJ}）" in result.output
    assert "签发城市：城市 2104（2104，都市圈伙伴城市" in result.output
    assert "都市圈伙伴城市配置：城市 2104（2104" in result.output

    # 抚顺's config signed by another root than the one 沈阳 lists for 抚顺: not used.
    forged = tmp_path / "forged.json"
    rogue = {**fushun_dict(), "root_keys": shenyang_dict()["root_keys"]}
    forged.write_text(json.dumps(signed_dict(rogue, CITY), ensure_ascii=False), "utf-8")
    result = run(text, "--config", str(home), "--peer-config", str(forged))
    assert result.exit_code == 1 and "未采用" in result.output
    assert "签发部门不在联邦配置中" in result.output
    # A home-city result still names its own city.
    own = run(result_text(seal_result(DOC, key(f"seal {HP_MZJ}"))), "--config", str(home))
    assert own.exit_code == 0 and "签发城市：城市 2101（2101，本联邦）" in own.output


def test_a_data_dir_supplies_the_peer_configs(tmp_path: Path) -> None:
    """``--data``: ``peers/*.json`` beside the config, or a station's own database."""
    doc = {**DOC, "authority": FS_SFJ, "authority_name": f"部门 {FS_SFJ}"}
    text = result_text(seal_result(doc, key(f"seal {FS_SFJ}")))
    data = tmp_path / "ops"
    (data / "peers").mkdir(parents=True)
    home = json.dumps(signed_dict(shenyang_dict(), CITY), ensure_ascii=False)
    peer = json.dumps(signed_dict(fushun_dict(), FS_CITY), ensure_ascii=False)
    (data / "current.json").write_text(home, "utf-8")
    assert run(text, "--data", str(data)).exit_code == 1
    (data / "peers" / "2104.json").write_text(peer, "utf-8")
    result = run(text, "--data", str(data))
    assert result.exit_code == 0 and "城市 2104（2104，都市圈伙伴城市" in result.output

    # A station keeps the peer configs its hub handed down in node.db (table configs).
    station = tmp_path / "station"
    station.mkdir()
    (station / "config.json").write_text(home, "utf-8")
    with sqlite3.connect(station / "node.db") as conn:
        conn.execute(
            "CREATE TABLE configs (city TEXT PRIMARY KEY, home BOOLEAN NOT NULL, "
            "serial INTEGER NOT NULL, signed TEXT NOT NULL, received_at TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO configs VALUES (?, 0, 1, ?, '2026-11-02T01:00:00+00:00')",
            (FS_CITY, peer),
        )
    conn.close()
    result = run(text, "--data", str(station))
    assert result.exit_code == 0, result.output
    assert "node.db" not in result.output and "城市 2104（2104" in result.output
