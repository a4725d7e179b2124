"""The sealed result (电子签章) as people see it: the printable document with its QR code and
the verdict on its seal, in Chinese, shared by the hub (workbench print view, public verify
page), the window node (result print view) and ``tongban verify``.

The QR code carries the whole sealed document (``TBRES1.`` + base64url of its canonical
JSON, :func:`protocol.seal.result_text`), so any window or phone holding the federation
config checks it offline; :func:`verdict` turns :func:`protocol.seal.verify_result`'s answer
into the sentences shown, and the template macro ``result_doc.html`` draws the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import segno

from protocol.config import Federation
from protocol.errors import ProtocolError
from protocol.seal import SealCheck, parse_result_text, result_text, verify_result

__all__ = [
    "SEAL_REASONS",
    "Verdict",
    "check_text",
    "document_view",
    "issuing_city",
    "qr_svg",
    "verdict",
]

#: Why a result is not genuine, as the clerk or the applicant reads it.
SEAL_REASONS: Final[Mapping[str, str]] = {
    "bad_seal": "签章与文书内容不符：文书在盖章后被改动过，或签章是伪造的",
    "unsealed": "文书没有电子签章",
    "bad_result": "不是有效的办理结果文书（格式有误或内容不完整）",
    "bad_sig": "电子签章的格式有误",
    "bad_utf8": "内容不是有效的结果文书（无法解析）",
    "bad_case_number": "结果文书中的办件编号无效",
    "unknown_authority": "签发部门不在联邦配置中",
    "unknown_key": "签发部门没有这枚印章密钥（可能是伪造的，或联邦配置过旧）",
    "key_not_valid": "盖章时这枚印章密钥不在有效期内（已过期或尚未生效）",
    "key_revoked": "这枚印章密钥在盖章时已被吊销",
    "unsupported_alg": "不支持的签章算法",
}


@dataclass(frozen=True)
class Verdict:
    """A seal check for people: ``genuine``, a headline and the sentences explaining it."""

    genuine: bool
    reason: str
    headline: str
    lines: tuple[str, ...]
    document: Mapping[str, Any] | None = None


def issuing_city(authority: str | None, federation: Federation | None) -> str | None:
    """Which city's config judged a seal: the home city, or a metro peer (都市圈) whose own
    root-signed config holds the authority's seal keys."""
    config = None if federation is None or authority is None else federation.city(authority)
    if config is None or federation is None:
        return None
    if config is federation.home:
        return f"签发城市：{config.name}（{config.federation}，本联邦）"
    return (
        f"签发城市：{config.name}（{config.federation}，都市圈伙伴城市；"
        f"依该市根密钥签发的联邦配置第 {config.serial} 版核验）"
    )


def verdict(
    check: SealCheck, document: Any = None, federation: Federation | None = None
) -> Verdict:
    """Say whether the result is genuine, who sealed it (and in which city, given the
    ``federation`` that judged it), and whether the key was valid."""
    doc = document if isinstance(document, dict) else None
    city = issuing_city(check.authority, federation)
    if check.genuine:
        who = check.authority_name or check.authority or ""
        lines = (
            f"签发部门：{who}（{check.authority}）",
            *([city] if city else []),
            "电子签章与文书内容一致，文书未被改动。",
            f"盖章时印章密钥有效（密钥 {(check.kid or '')[:16]}，未过期、未被吊销）。",
        )
        headline = "✔ 电子签章有效：该结果文书真实有效，由签发部门加盖电子签章"
        return Verdict(True, check.reason, headline, lines, doc)
    why = SEAL_REASONS.get(check.reason, f"核验未通过（{check.reason}）")
    problems = [f"原因：{why}。"]
    if check.authority:
        problems.append(f"文书声称的签发部门：{check.authority}")
        if check.reason == "unknown_authority":
            problems.append("若该部门属于都市圈伙伴城市，需先取得该市经根密钥签发的联邦配置。")
        elif city:
            problems.append(city)
    if check.reason in ("key_not_valid", "key_revoked"):
        problems.append("盖章时这枚印章已不能代表该部门，文书不能作为有效凭证。")
    headline = "✘ 核验未通过：不能确认该文书真实有效"
    return Verdict(False, check.reason, headline, tuple(problems), doc)


def check_text(text: str, federation: Federation) -> Verdict:
    """Verify a result given as QR text (``TBRES1.…``) or JSON, never raising."""
    try:
        doc = parse_result_text(text)
    except ProtocolError as exc:
        return verdict(SealCheck(False, exc.reason, exc.detail))
    return verdict(verify_result(doc, federation), doc, federation)


def qr_svg(text: str, *, scale: int = 3, error: str = "l", title: str | None = None) -> str | None:
    """An inline SVG QR code of ``text`` (no external assets: works offline), always a full
    QR code (never Micro QR, which phones read poorly); None when the text is too long for
    one. The sealed result uses error level L (the whole document must fit); the window's
    receipt (a short tracking text) M with its text as the SVG title."""
    try:
        code = segno.make(text, error=error, micro=False)
    except segno.DataOverflowError:
        return None
    return str(code.svg_inline(scale=scale, border=2, title=title))


def document_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The rows of the printed result (the applicant is already masked in the document)."""
    applicant = doc.get("applicant")
    applicant = applicant if isinstance(applicant, dict) else {}
    text = result_text(doc) if "seal" in doc else None
    return {
        "title": doc.get("result_name") or "办理结果通知",
        "case": doc.get("case", ""),
        "matter_name": doc.get("matter_name", ""),
        "applicant": applicant.get("name", ""),
        "id_masked": applicant.get("id_masked", ""),
        "decision": doc.get("decision", ""),
        "licence_no": doc.get("licence_no", ""),
        "valid_from": doc.get("valid_from", ""),
        "valid_until": doc.get("valid_until", ""),
        "authority_name": doc.get("authority_name") or doc.get("authority", ""),
        "issued": doc.get("issued", ""),
        "qr": None if text is None else qr_svg(text),
        "text": text,
    }
