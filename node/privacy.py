"""Personal data at the window: the one place that masks ID and phone numbers.

DOMAIN.md rule 8: ID numbers and phone numbers are shown masked in lists and logs
(``2101**********1234``). The full ID number is kept only in the station's own database;
what leaves the station in a signed event is the masked form and :func:`id_hash`, the
SHA-256 of the normalized number, which lets an authority find earlier files of the same
person (只提交一次材料) without learning the number.

:func:`scrub` is the safety net for free text (log lines, error details): anything that
looks like a mainland ID number (15 or 18 characters) or a mobile number (11 digits) is
masked wherever it appears.
"""

from __future__ import annotations

import hashlib
import re

_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
_PHONE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def normalize_id(number: str) -> str:
    """The canonical form of an ID number: no white space, upper-case check letter."""
    return "".join(number.split()).upper()


def id_hash(number: str) -> str:
    """Hex SHA-256 of the normalized ID number (travels in events instead of the number)."""
    return hashlib.sha256(normalize_id(number).encode("utf-8")).hexdigest()


def mask_id(number: str) -> str:
    """``210102199001011234`` -> ``2101**********1234``: keep 4 + 4, star the middle.

    Short numbers (passports, other documents) keep one character at each end.
    """
    text = normalize_id(number)
    if len(text) >= 12:
        return text[:4] + "*" * (len(text) - 8) + text[-4:]
    if len(text) >= 3:
        return text[0] + "*" * (len(text) - 2) + text[-1]
    return "*" * len(text)


def mask_phone(number: str) -> str:
    """``13812345678`` -> ``138****5678``; other lengths keep the last 4 digits only."""
    text = "".join(number.split())
    if len(text) == 11 and text.isdigit():
        return text[:3] + "****" + text[-4:]
    if len(text) > 4:
        return "*" * (len(text) - 4) + text[-4:]
    return "*" * len(text)


def scrub(text: str) -> str:
    """Mask every ID number and mobile number found in free text."""
    text = _ID_IN_TEXT.sub(lambda m: mask_id(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_RESIDENT_ID = re.compile(r"^[0-9]{17}[0-9X]\Z")


def resident_id_ok(number: str) -> bool:
    """True for an 18-character 居民身份证 number with a correct check character
    (GB 11643, ISO 7064 MOD 11-2)."""
    text = normalize_id(number)
    if not _RESIDENT_ID.match(text):
        return False
    total = sum(int(c) * w for c, w in zip(text[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == text[17]
