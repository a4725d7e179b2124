"""The fold cache's codec: every reachable case survives encode/decode; the compiled encoder
writes exactly what the generic walk writes; an older shape is refused (re-fold)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hub.services import casecodec
from hub.services.casecodec import CodecError, decode_case, encode_case
from protocol.case import Case, CaseState
from tests.protocol.test_case import reach


def cases() -> list[Case]:
    """A case in every state, one with 容缺/告知承诺 materials, pauses, steps and ratings."""
    out = []
    for state in CaseState:
        flow = reach(state)
        if state is CaseState.RATED:
            flow.do("case.followed_up")
        out.append(flow.case)
    return out


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.state.value)
def test_every_case_round_trips_and_both_encoders_agree(case: Case) -> None:
    text = encode_case(case)
    assert decode_case(text) == case
    assert json.loads(text) == casecodec._encode(case)


def test_the_catalog_entry_is_written_once_per_entry_and_stays_right() -> None:
    first, other = cases()[:2]
    text = encode_case(first)
    renamed = replace(first, terms=replace(first.terms, name="另一个事项"))
    assert decode_case(encode_case(renamed)).terms.name == "另一个事项"
    assert decode_case(text).terms == first.terms
    assert decode_case(encode_case(other)) == other


def test_an_older_shape_is_refused_so_the_hub_refolds() -> None:
    raw = json.loads(encode_case(cases()[0]))
    del raw["received"]  # a required field the stored fold lacks
    with pytest.raises(CodecError):
        decode_case(json.dumps(raw))
    raw = json.loads(encode_case(cases()[0]))
    raw["materials"] = [{"id": "form"}]  # a nested dataclass of another shape
    with pytest.raises(CodecError):
        decode_case(json.dumps(raw))
