"""The case fold: every table row legal and by the wrong member, every rejection, lifecycles,
time limits with pauses, and Hypothesis over arbitrary event sequences."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.case import (
    EVENT_TYPES,
    PAUSED,
    TRANSITIONS,
    Case,
    CaseFolder,
    CaseRejected,
    CaseState,
    Item,
    Pledge,
    Receipt,
    Who,
    blobs_named,
    sign_receipt,
    submitted_to,
)
from protocol.config import Federation, FederationConfig
from protocol.errors import RemoteProtocolError
from protocol.event import Event
from protocol.ids import member_of
from protocol.routing import competent_authority
from protocol.workdays import Deadline, Pause
from tests.protocol.fed import (
    ANNUAL,
    CITY,
    DIBAO,
    FOOD,
    FS_CITY,
    FS_LOCAL,
    FS_METRO,
    FS_SFJ,
    FS_VILLAGE,
    HEPING,
    JTJ,
    LAWYER,
    NEIGHBOUR,
    RELIEF,
    RIDE,
    SFJ,
    SHENHE,
    SHENHE_VILLAGE,
    VILLAGE,
    VILLAGE_2,
    Maker,
    applicant,
    federation,
    key,
    provided,
    sha,
    shenyang_dict,
    submission,
)

S = CaseState
F = federation()
CAL = F.home.calendar
FOLDER = CaseFolder(F)
D = date.fromisoformat

# The staff who act for each authority, by the role a step or a decision needs.
STAFF = {
    SFJ: {"acceptor": "sfj-shouli", "reviewer": "sfj-shenhe", "signer": "sfj-qianfa"},
    "2101:scjgj": {"reviewer": "scj-shenhe"},
    JTJ: {"reviewer": "jtj-shenhe"},
    "210102:mzj": {"reviewer": "hp-mzj"},
    "210103:mzj": {"reviewer": "sh-mzj"},
    FS_SFJ: {"reviewer": "fs-sfj"},
}
PLEDGED = {"text": "本人承诺无犯罪记录，如有不实愿承担责任"}
DEFAULTS: dict[str, dict[str, Any]] = {
    "case.correction_requested": {"items": [{"material": "form", "problem": "缺少签字"}]},
    "case.accepted": {},
    "case.not_accepted": {"reason": "不属于本机关职权范围"},
    "case.supplement_requested": {"items": [{"field": "address", "problem": "地址不详"}]},
    "case.supplemented": {},
    "case.suspended": {"reason": "需要现场核查"},
    "case.resumed": {},
    "case.extended": {"days": 2, "reason": "情况复杂"},
    "case.decided": {"result_code": 0, "result": {"licence": "A-1"}, "opinion": "准予许可"},
    "case.delivered": {"collector": "张三", "method": "窗口领取"},
    "case.rated": {"score": 2, "comment": "等候太久"},  # 差评: a follow-up is due
    "case.withdrawn": {"reason": "申请人撤回"},
    "case.terminated": {"reason": "承诺不实"},
    "case.verified": {"outcome": "confirmed", "note": "经核查承诺属实"},
    "case.followed_up": {"note": "已电话回访，已致歉并改进"},
}
DROP = object()


def legal_author(case: Case, type: str) -> str:
    """The member the table names for this move (the authority host for illegal ones; for a
    receipt, the first addressee the case awaits)."""
    rule = TRANSITIONS.get((case.state, type))
    who = "authority" if rule is None else rule.who
    if who == "addressee" and case.awaiting:
        return case.awaiting[0].member
    hosts = ("authority", "window_or_authority", "addressee")
    return member_of(case.authority) if who in hosts else case.window


def legal_to(case: Case, type: str, author: str) -> tuple[str, ...]:
    """Where the apps send a move: an authority act to the windows (review._recipients), a
    window's act to the authority and the other windows (node recipients), a receipt back
    to the author of the event it confirms."""
    if type == "case.received":
        return ()  # the receipt's own to is owed nothing; the fold does not read it
    if author == member_of(case.authority):
        return tuple(dict.fromkeys((case.window, case.pickup)))
    parties = (case.authority, case.window, case.pickup)
    return tuple(dict.fromkeys(a for a in parties if member_of(a) != author))


def legal_body(case: Case, type: str) -> dict[str, Any]:
    """A body that passes the checks of ``type``, ``by`` the staff with the needed role."""
    steps = case.terms.steps
    if type == "case.step":
        body: dict[str, Any] = {"step": case.step, "outcome": "pass", "opinion": "同意"}
    elif type == "case.corrected":
        body = {"materials": submission(case.matter)["materials"]}
    elif type == "case.received":
        return {"event": case.awaiting[0].event if case.awaiting else case.history[-1]}
    else:
        body = dict(DEFAULTS.get(type, {}))
    staff = STAFF.get(case.authority, {})
    if type == "case.step" and case.step < len(steps):
        body["by"] = staff.get(steps[case.step].role, "nobody")
    elif type in ("case.step", "case.decided") and steps:
        body["by"] = staff.get(steps[-1].role, "nobody")
    else:
        body["by"] = staff.get("acceptor", staff.get("reviewer"))
    return body


class Flow:
    """One case driven through the folder, with legal defaults for every move."""

    def __init__(
        self, matter: str = ANNUAL, window: str = VILLAGE, location: str = VILLAGE, **extra: Any
    ) -> None:
        self.make = Maker(f"{window}-20261102-0001")
        self.authority = competent_authority(F, matter, location)
        self.host = member_of(self.authority)
        first = self.make(
            "case.submitted",
            window,
            submission(matter, location, **extra),
            to=submitted_to(self.authority, window, extra.get("pickup", window)),
        )
        self.case = FOLDER.apply(None, first)

    def author(self, type: str) -> str:
        return legal_author(self.case, type)

    def body(self, type: str, **fields: Any) -> dict[str, Any]:
        body = legal_body(self.case, type)
        body.update(fields)
        return {k: v for k, v in body.items() if v is not DROP}

    def event(
        self,
        type: str,
        author: str | None = None,
        *,
        ts: str | None = None,
        to: tuple[str, ...] | None = None,
        **fields: Any,
    ) -> Event:
        author = author or self.author(type)
        to = legal_to(self.case, type, author) if to is None else to
        return self.make(type, author, self.body(type, **fields), ts=ts, to=to)

    def do(self, type: str, author: str | None = None, /, **fields: Any) -> Case:
        self.case = FOLDER.apply(self.case, self.event(type, author, **fields))
        return self.case

    def reject(self, expected: str, type: str, author: str | None = None, /, **fields: Any) -> None:
        event = self.event(type, author, **fields)
        with pytest.raises(CaseRejected) as caught:
            FOLDER.apply(self.case, event)
        assert caught.value.reason == expected, caught.value

    def review(self) -> Case:
        """Accept and pass every step."""
        self.do("case.accepted")
        while self.case.step < len(self.case.terms.steps):
            self.do("case.step")
        return self.case


def pledged_lawyer() -> Flow:
    """律师执业申请 with the 无犯罪记录证明 replaced by a 告知承诺 pledge."""
    materials = [*provided("form", "idcard"), {"id": "nocrime", "mode": "pledged"}]
    return Flow(LAWYER, materials=materials, pledge=PLEDGED)


def reach(state: CaseState, matter: str = LAWYER) -> Flow:
    """A case of ``matter`` (with a pledge when it is 律师执业申请) standing in ``state``."""
    flow = pledged_lawyer() if matter == LAWYER else Flow(matter)
    if state is S.SUBMITTED:
        return flow
    if state is S.CORRECTION:
        flow.do("case.correction_requested")
        return flow
    if state is S.NOT_ACCEPTED:
        flow.do("case.not_accepted")
        return flow
    flow.do("case.accepted")
    to_the_end = [*["case.step"] * len(flow.case.terms.steps), "case.decided"]
    to_the_end += ["case.delivered", "case.rated"]
    moves = {
        S.ACCEPTED: [],
        S.IN_REVIEW: ["case.step"],
        S.AWAITING_SUPPLEMENT: ["case.supplement_requested"],
        S.SUSPENDED: ["case.suspended"],
        S.DECIDED: to_the_end[:-2],
        S.DELIVERED: to_the_end[:-1],
        S.RATED: to_the_end,
        S.WITHDRAWN: ["case.withdrawn"],
        S.TERMINATED: ["case.terminated"],
    }[state]
    for move in moves:
        flow.do(move)
    assert flow.case.state is state
    return flow


# -- the table --------------------------------------------------------------------------

# Rows whose legal move needs another matter than 律师执业申请 (three steps).
ROW_MATTER = {(S.ACCEPTED, "case.decided"): ANNUAL, (S.IN_REVIEW, "case.decided"): ANNUAL}
WRONG_MEMBER: dict[Who, tuple[str, str]] = {
    "window": (NEIGHBOUR, "not_the_window"),
    "authority": (VILLAGE, "not_the_authority"),
    "pickup": (NEIGHBOUR, "not_the_pickup"),
    "any_window": (CITY, "not_a_window"),
    "window_or_authority": (NEIGHBOUR, "not_the_authority"),
    "addressee": (NEIGHBOUR, "not_an_addressee"),
}
ROWS = sorted((k for k in TRANSITIONS if k[0] is not None), key=str)


def test_table_shape() -> None:
    assert (None, "case.submitted") in TRANSITIONS
    assert {k[1] for k in TRANSITIONS} == EVENT_TYPES
    assert all(t.startswith("case.") for t in EVENT_TYPES)
    for (state, _), rule in TRANSITIONS.items():
        assert rule.target is not None or state in PAUSED
    exits = {S.WITHDRAWN, S.NOT_ACCEPTED, S.TERMINATED}
    assert not any(state in exits for state, kind in TRANSITIONS if kind != "case.received")
    assert all(TRANSITIONS[(s, "case.received")].target is s for s in CaseState)
    labels = "收件 补正 已受理 审查中 待补办 特别程序 办结 已送达 已评价 撤回 不予受理 异常终止"
    assert " ".join(s.label for s in CaseState) == labels
    assert isinstance(S.DECIDED, str) and str(S.DECIDED) == "decided"
    assert CaseState("in_review") is S.IN_REVIEW


@pytest.mark.parametrize(("state", "type"), ROWS, ids=lambda v: str(v))
def test_row_legal(state: CaseState, type: str) -> None:
    flow = reach(state, ROW_MATTER.get((state, type), LAWYER))
    before = flow.case
    event = flow.event(type)
    after = FOLDER.apply(before, event)
    rule = TRANSITIONS[(state, type)]
    assert after.state == (rule.target or before.previous)
    assert after.history == (*before.history, event.id)
    assert after.number == before.number


@pytest.mark.parametrize(("state", "type"), ROWS, ids=lambda v: str(v))
def test_row_wrong_member(state: CaseState, type: str) -> None:
    flow = reach(state, ROW_MATTER.get((state, type), LAWYER))
    author, reason = WRONG_MEMBER[TRANSITIONS[(state, type)].who]
    flow.reject(reason, type, author)


def test_submission_row(make: Maker, folder: CaseFolder) -> None:
    body = submission(ANNUAL)
    case = folder.apply(None, make("case.submitted", VILLAGE, body, to=(SFJ,)))
    assert (case.state, case.window, case.pickup, case.authority) == (
        S.SUBMITTED,
        VILLAGE,
        VILLAGE,
        SFJ,
    )
    assert case.received == datetime.fromisoformat("2026-11-02T09:01:00+08:00")
    assert case.applicant.id_masked == "2101**********1234" and case.agent is None
    with pytest.raises(CaseRejected) as caught:
        folder.apply(None, make("case.submitted", VILLAGE, body, to=(SFJ,), case=None))
    assert caught.value.reason == "wrong_case"
    with pytest.raises(CaseRejected) as caught:  # the number says who opened the case
        folder.apply(None, make("case.submitted", NEIGHBOUR, body, to=(SFJ,)))
    assert caught.value.reason == "not_the_window"


@pytest.mark.parametrize("state", [s for s in CaseState])
def test_illegal_transitions(state: CaseState) -> None:
    """Every (state, type) pair outside the table is illegal_transition."""
    if state in (S.WITHDRAWN, S.NOT_ACCEPTED, S.TERMINATED):
        flow = reach(S.ACCEPTED) if state is not S.NOT_ACCEPTED else reach(S.SUBMITTED)
        flow.do(
            {
                S.WITHDRAWN: "case.withdrawn",
                S.NOT_ACCEPTED: "case.not_accepted",
                S.TERMINATED: "case.terminated",
            }[state]
        )
    else:
        flow = reach(state)
    for type in sorted(EVENT_TYPES):
        if (state, type) not in TRANSITIONS:
            flow.reject("illegal_transition", type, CITY)


# -- the gate ---------------------------------------------------------------------------


def test_unknown_type_wrong_case_duplicate(make: Maker) -> None:
    flow = Flow()
    flow.reject("unknown_type", "case.reopened", CITY)
    other = Maker(f"{VILLAGE}-20261102-0002")
    with pytest.raises(CaseRejected) as caught:
        FOLDER.apply(flow.case, other("case.accepted", CITY, {"by": "sfj-shenhe"}))
    assert caught.value.reason == "wrong_case"
    event = flow.event("case.correction_requested")
    case = FOLDER.apply(flow.case, event)
    case = FOLDER.apply(case, flow.event("case.corrected", VILLAGE))
    with pytest.raises(CaseRejected) as caught:
        FOLDER.apply(case, event)
    assert caught.value.reason == "duplicate_event"
    with pytest.raises(CaseRejected) as caught:
        FOLDER.apply(None, make("case.accepted", CITY, {"by": "sfj-shenhe"}))
    assert caught.value.reason == "illegal_transition"
    assert isinstance(caught.value, RemoteProtocolError) and caught.value.fault == "remote"


def test_fold_runs_events_in_order(make: Maker, folder: CaseFolder) -> None:
    events = [
        make("case.submitted", VILLAGE, submission(ANNUAL), to=(SFJ,)),
        make("case.accepted", CITY, {"by": "sfj-shenhe"}),
    ]
    case = folder.fold(events)
    assert case.state is S.ACCEPTED and case.history == tuple(e.id for e in events)
    with pytest.raises(CaseRejected) as caught:
        folder.fold([])
    assert caught.value.reason == "no_events"


@pytest.mark.parametrize(
    ("by", "reason"),
    [
        (7, "bad_body"),
        ("nobody", "unknown_staff"),
        ("hp-mzj", "unknown_staff"),  # staff of 210102, not of the author 2101
        ("scj-shenhe", "wrong_department"),
        ("sfj-retired", "inactive_staff"),
    ],
)
def test_authority_staff(by: Any, reason: str) -> None:
    Flow().reject(reason, "case.accepted", by=by)


def test_staff_disabled_later_keeps_their_earlier_acts() -> None:
    """A config that disables an account from a moment on judges each act at its own time:
    refolding a case under it keeps what the account did before (node/sync refold_all)."""
    obj = shenyang_dict()
    for entry in obj["staff"]:
        if entry["id"] == "sfj-shenhe":
            entry.update(active=False, disabled_at="2026-11-02T12:00:00+08:00")
    later = Federation(FederationConfig.parse({**obj, "serial": obj["serial"] + 1}), F.peers)
    make = Maker()
    submitted = make("case.submitted", VILLAGE, submission(ANNUAL), to=(SFJ,))
    accepted = make("case.accepted", CITY, {"by": "sfj-shenhe"})  # 09:02, before 12:00
    case = CaseFolder(later).fold([submitted, accepted])
    assert case.state is S.ACCEPTED
    step = make(
        "case.step",
        CITY,
        {"by": "sfj-shenhe", "step": 0, "outcome": "pass"},
        ts="2026-11-02T12:00:00+08:00",
    )
    with pytest.raises(CaseRejected) as caught:
        CaseFolder(later).apply(case, step)
    assert caught.value.reason == "inactive_staff"


def test_any_window_may_be_another_station() -> None:
    flow = reach(S.CORRECTION, ANNUAL)
    assert flow.do("case.corrected", NEIGHBOUR).state is S.SUBMITTED
    flow = reach(S.DELIVERED, ANNUAL)
    assert flow.do("case.rated", SHENHE_VILLAGE).ratings[0].by == SHENHE_VILLAGE
    flow.reject("not_a_window", "case.rated", SHENHE)  # a hub without windows


# -- submission -------------------------------------------------------------------------


def submit(
    body: dict[str, Any], *, author: str = VILLAGE, to: tuple[str, ...] = (SFJ,), **kw: Any
) -> Case:
    return FOLDER.apply(
        None, Maker(f"{author}-20261102-0001")("case.submitted", author, body, to=to, **kw)
    )


def submit_rejects(reason: str, body: dict[str, Any], **kw: Any) -> None:
    with pytest.raises(CaseRejected) as caught:
        submit(body, **kw)
    assert caught.value.reason == reason, caught.value


def with_applicant(**fields: Any) -> dict[str, Any]:
    return submission(ANNUAL, applicant={**applicant(), **fields})


def with_material(*entries: Any, matter: str = ANNUAL) -> dict[str, Any]:
    return submission(matter, materials=list(entries))


@pytest.mark.parametrize(
    ("reason", "body", "kw"),
    [
        ("unknown_matter", submission(ANNUAL) | {"matter": "NO-SUCH"}, {}),
        ("unknown_matter", submission(ANNUAL) | {"matter": 7}, {}),
        (
            "unknown_matter",
            submission(FS_METRO) | {"matter": FS_LOCAL},
            {"to": (FS_SFJ,)},
        ),  # peer, not metro
        ("bad_body", submission(ANNUAL) | {"location": 210102}, {}),
        ("bad_body", submission(ANNUAL, location="21010"), {}),
        ("location_too_coarse", submission(RELIEF, location=CITY), {"to": ("210102:mzj",)}),
        ("wrong_recipient", submission(ANNUAL), {"to": ("2101:jtj",)}),
        ("wrong_recipient", submission(ANNUAL), {"to": (SFJ, CITY)}),
        # a pickup window elsewhere must be addressed too, so it can fold the case
        ("wrong_recipient", submission(ANNUAL, pickup=HEPING), {}),
        ("wrong_recipient", submission(ANNUAL), {"to": (SFJ, VILLAGE)}),
        (
            "out_of_scope",
            submission(RELIEF, location=VILLAGE),
            {"author": SHENHE_VILLAGE, "to": ("210102:mzj",)},
        ),
        ("out_of_scope", submission(ANNUAL, location=FS_VILLAGE), {"author": FS_VILLAGE}),
        ("unknown_member", submission(ANNUAL), {"author": "210102009009"}),
        ("unknown_pickup", submission(ANNUAL, pickup="210102009009"), {}),
        ("unknown_pickup", submission(ANNUAL, pickup=None), {}),
        ("bad_body", submission(ANNUAL, bundle="not-a-case"), {}),
        ("bad_body", submission(ANNUAL, bundle=12), {}),
        ("bad_body", submission(ANNUAL, applicant="张三"), {}),
        ("bad_body", with_applicant(id_hash="2101**1234"), {}),
        ("bad_body", with_applicant(name=""), {}),
        ("bad_body", with_applicant(id_masked=None), {}),
        ("bad_body", submission(ANNUAL, agent=["李四"]), {}),
        ("bad_body", submission(ANNUAL, agent={"name": "李四"}), {}),
        ("bad_body", submission(ANNUAL, materials={"form": "provided"}), {}),
        ("bad_body", with_material("form"), {}),
        ("unknown_material", with_material({"id": "nope", "mode": "provided"}), {}),
        ("unknown_material", with_material({"id": 3, "mode": "provided"}), {}),
        ("bad_body", with_material(*provided("form"), *provided("form")), {}),
        ("bad_body", with_material({"id": "form", "mode": "copied"}), {}),
        ("bad_body", with_material({"id": "form", "mode": "provided", "blobs": ["x"]}), {}),
        ("bad_body", with_material({"id": "form", "mode": "provided", "blobs": "x"}), {}),
        ("bad_body", with_material({"id": "form", "mode": "provided", "name": 1}), {}),
        ("missing_material", with_material(), {}),
        ("not_deferrable", with_material({"id": "form", "mode": "deferred"}), {}),
        ("not_pledgeable", with_material({"id": "form", "mode": "pledged"}), {}),
    ],
)
def test_submission_rejections(reason: str, body: dict[str, Any], kw: dict[str, Any]) -> None:
    submit_rejects(reason, body, **kw)


def test_submission_optional_fields() -> None:
    parent = f"{VILLAGE}-20261101-0009"
    agent = {"name": "李四", "id_masked": "2101**********5678"}
    body = submission(ANNUAL, agent=agent, pickup=HEPING, bundle=parent, location=NEIGHBOUR)
    case = submit(body, to=(SFJ, HEPING))
    assert case.agent is not None and case.agent.name == "李四"
    assert (case.pickup, case.bundle, case.location) == (HEPING, parent, NEIGHBOUR)
    assert case.materials[0].blobs == (sha("form"),) and case.pledge is None
    # a suffixed station of the village is a window of its own
    assert submit(submission(ANNUAL), author=VILLAGE_2).window == VILLAGE_2


def food(*entries: dict[str, Any], pledge: Any = None) -> dict[str, Any]:
    extra = {} if pledge is None else {"pledge": pledge}
    return submission(FOOD, materials=[*provided("form"), *entries], **extra)


HEALTH_LATER = {"id": "health", "mode": "deferred", "name": "健康证明"}
PREMISES_PLEDGED = {"id": "premises", "mode": "pledged"}


@pytest.mark.parametrize(
    ("reason", "body"),
    [
        ("missing_pledge", food(HEALTH_LATER, *provided("premises"))),
        ("missing_pledge", food(HEALTH_LATER, *provided("premises"), pledge={"text": "承诺"})),
        ("missing_pledge", food(PREMISES_PLEDGED, *provided("health"))),
        ("bad_body", food(PREMISES_PLEDGED, *provided("health"), pledge="承诺")),
        ("bad_body", food(PREMISES_PLEDGED, *provided("health"), pledge={"text": ""})),
        (
            "bad_body",
            food(
                HEALTH_LATER,
                *provided("premises"),
                pledge={"text": "承诺", "deadline": "2026-11-31"},
            ),
        ),
        (
            "bad_body",
            food(
                HEALTH_LATER, *provided("premises"), pledge={"text": "承诺", "deadline": "20261110"}
            ),
        ),
        (
            "bad_body",
            food(
                HEALTH_LATER, *provided("premises"), pledge={"text": "承诺", "deadline": 20261110}
            ),
        ),
        # promised completion: 10 working days after Mon 2026-11-02 is Mon 2026-11-16
        (
            "bad_pledge_deadline",
            food(
                HEALTH_LATER,
                *provided("premises"),
                pledge={"text": "承诺", "deadline": "2026-11-17"},
            ),
        ),
        (
            "bad_pledge_deadline",
            food(
                HEALTH_LATER,
                *provided("premises"),
                pledge={"text": "承诺", "deadline": "2026-11-01"},
            ),
        ),
    ],
)
def test_pledge_rejections(reason: str, body: dict[str, Any]) -> None:
    submit_rejects(reason, body, to=("2101:scjgj",))


def test_calendar_out_of_range_is_a_rejection() -> None:
    """A ts at the end of time leaves no room for the promised days: rejected, not a crash."""
    body = food(
        HEALTH_LATER, *provided("premises"), pledge={"text": "承诺", "deadline": "9999-12-31"}
    )
    submit_rejects(
        "deadline_out_of_range", body, to=("2101:scjgj",), ts="9999-12-31T10:00:00+08:00"
    )


# -- lifecycles -------------------------------------------------------------------------


def test_normal_lifecycle_独任() -> None:
    flow = Flow(ANNUAL)
    assert flow.do("case.accepted").accepted_at is not None
    case = flow.do("case.step", by="sfj-shenhe")
    assert case.state is S.IN_REVIEW and case.step == 1
    assert (case.steps[0].name, case.steps[0].by, case.steps[0].opinion) == (
        "审核",
        "sfj-shenhe",
        "同意",
    )
    case = flow.do("case.decided", by="sfj-shenhe")
    assert (case.state, case.result_code, case.reason) == (S.DECIDED, 0, "")
    case = flow.do("case.delivered")
    assert case.delivered_at is not None and case.state.label == "已送达"
    case = flow.do("case.rated", score=5, comment="满意")
    assert case.state is S.RATED and not case.needs_follow_up
    assert len(case.history) == 6
    flow.reject("no_follow_up_needed", "case.followed_up")


def test_独任_may_decide_without_taking_the_step() -> None:
    flow = Flow(ANNUAL)
    flow.do("case.accepted")
    assert flow.do("case.decided", result_code=1, reason="不符合条件", result=DROP).result_code == 1


def test_correction_lifecycle() -> None:
    flow = Flow(ANNUAL)
    case = flow.do(
        "case.correction_requested",
        items=[
            {"material": "form", "problem": "缺少签字"},
            {"field": "phone", "problem": "号码不全"},
        ],
    )
    assert case.state is S.CORRECTION and case.corrections == 1
    assert case.items == (Item("缺少签字", "form"), Item("号码不全", None, "phone"))
    flow.reject("illegal_transition", "case.correction_requested")  # 一次性告知
    flow.reject("missing_material", "case.corrected", materials=[])
    case = flow.do("case.corrected", materials=provided("form"))
    assert case.state is S.SUBMITTED and case.items == ()
    assert flow.do("case.accepted").state is S.ACCEPTED


@pytest.mark.parametrize(
    "items",
    [
        [],
        "缺少签字",
        ["缺少签字"],
        [{"material": "nope", "problem": "x"}],
        [{"material": 1, "problem": "x"}],
        [{"problem": "x"}],
        [{"field": "", "problem": "x"}],
        [{"field": "phone"}],
        [{"field": "phone", "problem": ""}],
    ],
)
def test_correction_items_rejected(items: Any) -> None:
    reason = "unknown_material" if "material" in str(items) else "bad_body"
    Flow().reject(reason, "case.correction_requested", items=items)
    reach(S.ACCEPTED, ANNUAL).reject(reason, "case.supplement_requested", items=items)


def test_not_accepted_needs_a_reason() -> None:
    flow = reach(S.CORRECTION, ANNUAL)
    flow.reject("missing_reason", "case.not_accepted", reason="  ")
    flow.reject("missing_reason", "case.not_accepted", reason=DROP)
    case = flow.do("case.not_accepted")
    assert case.state is S.NOT_ACCEPTED and case.reason == "不属于本机关职权范围"


def test_容缺_lifecycle() -> None:
    pledge = {"text": "承诺十个工作日内补交健康证明", "deadline": "2026-11-16"}
    flow = Flow(FOOD, materials=[*provided("form", "premises"), HEALTH_LATER], pledge=pledge)
    assert flow.case.pledge == Pledge(pledge["text"], D("2026-11-16"))
    assert flow.case.outstanding == ("health",)
    flow.review()
    flow.reject("materials_outstanding", "case.decided")
    flow.do("case.supplement_requested", items=[{"material": "health", "problem": "容缺材料到期"}])
    flow.reject(
        "unknown_material", "case.supplemented", materials=[{"id": "x", "mode": "provided"}]
    )
    case = flow.do("case.supplemented", materials=provided("health"))
    assert case.state is S.IN_REVIEW and case.outstanding == ()
    assert flow.do("case.decided").state is S.DECIDED
    # a denial need not wait for the deferred material
    flow = Flow(FOOD, materials=[*provided("form", "premises"), HEALTH_LATER], pledge=pledge)
    flow.review()
    assert flow.do("case.decided", result_code=5, reason="材料不全").result_code == 5


def test_容缺_deadline_missed_terminates() -> None:
    pledge = {"text": "承诺补交", "deadline": "2026-11-06"}
    flow = Flow(FOOD, materials=[*provided("form", "premises"), HEALTH_LATER], pledge=pledge)
    flow.do("case.accepted")
    flow.do("case.supplement_requested", ts="2026-11-03")
    flow.reject("missing_reason", "case.terminated", reason="")
    case = flow.do("case.terminated", ts="2026-11-09", reason="容缺材料逾期未补")
    assert case.state is S.TERMINATED and case.pauses == (Pause(D("2026-11-03"), D("2026-11-09")),)


def test_supplement_may_bring_a_new_pledge() -> None:
    flow = Flow(FOOD)
    flow.do("case.accepted")
    flow.do("case.supplement_requested")
    flow.reject(
        "missing_pledge", "case.supplemented", materials=[HEALTH_LATER]
    )  # 容缺 later still needs its pledge
    case = flow.do(
        "case.supplemented",
        materials=[PREMISES_PLEDGED],
        pledge={"text": "承诺场所合法"},
    )
    assert case.pledge == Pledge("承诺场所合法") and case.state is S.ACCEPTED


def test_告知承诺_lifecycle_and_termination_after_delivery() -> None:
    flow = pledged_lawyer()
    assert flow.case.pledge == Pledge(PLEDGED["text"])
    assert [m.mode for m in flow.case.materials] == ["provided", "provided", "pledged"]
    flow.review()
    flow.do("case.decided")
    flow.do("case.delivered", flow.case.pickup)
    case = flow.do("case.terminated", reason="核查发现承诺不实")
    assert case.state is S.TERMINATED and case.reason == "核查发现承诺不实"


@pytest.mark.parametrize(
    ("matter", "decision"),
    [
        (ANNUAL, {}),  # approved, but nothing was pledged
        (LAWYER, {"result_code": 1, "reason": "不符合条件", "result": DROP}),  # pledged, denied
    ],
)
def test_no_termination_after_decision_without_pledged_approval(
    matter: str, decision: dict[str, Any]
) -> None:
    flow = pledged_lawyer() if matter == LAWYER else Flow(matter)
    flow.review()
    flow.do("case.decided", **decision)
    flow.reject("no_pledge", "case.terminated")


def test_即办_at_the_window(case_federation: Federation) -> None:
    flow = Flow(DIBAO)
    assert flow.case.authority == "210102:mzj"
    flow.reject("unknown_staff", "case.accepted", VILLAGE, by="n-clerk")
    flow.reject("bad_body", "case.accepted", VILLAGE, by=DROP)
    case = flow.do("case.accepted", VILLAGE, by="v-clerk")
    assert case.state is S.ACCEPTED
    assert case.deadline(case_federation.home.calendar) == Deadline(D("2026-11-02"))
    case = flow.do("case.decided", VILLAGE, by="v-clerk", result={"证明编号": "DB-1"})
    assert case.state is S.DECIDED and case.decided_at is not None
    assert flow.do("case.delivered", VILLAGE).state is S.DELIVERED


def test_即办_may_still_go_to_the_authority() -> None:
    flow = Flow(DIBAO)
    flow.do("case.accepted", HEPING, by="hp-mzj")
    assert flow.do("case.decided", HEPING, by="hp-mzj").state is S.DECIDED


def test_window_may_not_decide_what_is_not_delegated() -> None:
    flow = Flow(ANNUAL)
    flow.reject("not_delegated", "case.accepted", VILLAGE, by="v-clerk")
    flow.do("case.accepted")
    flow.reject("not_delegated", "case.decided", VILLAGE, by="v-clerk")
    # a 即办 matter delegated to villages is not delegated to the neighbour's clerk here
    Flow(DIBAO).reject("not_the_authority", "case.accepted", NEIGHBOUR, by="n-clerk")


def test_multi_step_with_return() -> None:
    flow = pledged_lawyer()
    flow.do("case.accepted")
    flow.reject("wrong_role", "case.step", by="sfj-shenhe")  # 受理审查 needs an acceptor
    flow.reject("wrong_step", "case.step", step=1)
    flow.reject("wrong_step", "case.step", step="0")
    flow.do("case.step")
    flow.reject("steps_incomplete", "case.decided")
    flow.do("case.step")
    assert flow.case.step == 2
    flow.reject("bad_body", "case.step", outcome="return", to_step=DROP, opinion="退回")
    flow.reject("bad_body", "case.step", outcome="return", to_step=2, opinion="退回")
    flow.reject("bad_body", "case.step", outcome="maybe")
    flow.reject("bad_body", "case.step", opinion="")
    case = flow.do("case.step", outcome="return", to_step=1, opinion="事实不清，退回审核")
    assert case.step == 1 and case.state is S.IN_REVIEW
    flow.do("case.step", opinion="已补充核实")
    flow.do("case.step", opinion="同意签发")
    flow.reject("wrong_step", "case.step", step=3)
    flow.reject("wrong_role", "case.decided", by="sfj-shenhe")
    case = flow.do("case.decided")
    log = [(r.step, r.name, r.outcome, r.to_step, r.by) for r in case.steps]
    assert log == [
        (0, "受理审查", "pass", None, "sfj-shouli"),
        (1, "审核", "pass", None, "sfj-shenhe"),
        (2, "签发", "return", 1, "sfj-qianfa"),
        (1, "审核", "pass", None, "sfj-shenhe"),
        (2, "签发", "pass", None, "sfj-qianfa"),
    ]
    assert case.steps[2].opinion == "事实不清，退回审核"
    assert all(r.at <= case.decided_at for r in case.steps if case.decided_at)


def test_step_on_a_matter_without_steps() -> None:
    flow = Flow(DIBAO)
    flow.do("case.accepted", HEPING, by="hp-mzj")
    flow.reject("wrong_step", "case.step", HEPING, by="hp-mzj", step=0)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"result_code": 2}, "bad_body"),
        ({"result_code": True}, "bad_body"),
        ({"result_code": 1, "reason": DROP}, "missing_reason"),
        ({"result_code": 6, "reason": ""}, "missing_reason"),
        ({"result": DROP}, "bad_body"),
        ({"result": "证照"}, "bad_body"),
        ({"opinion": 3}, "bad_body"),
        ({"reason": 3}, "bad_body"),
    ],
)
def test_decision_rejections(fields: dict[str, Any], reason: str) -> None:
    flow = Flow(ANNUAL)
    flow.review()
    flow.reject(reason, "case.decided", **fields)


def test_pauses_move_the_deadline() -> None:
    flow = Flow(ANNUAL)  # 5 working days, legal 10
    assert flow.case.deadline(CAL) is None
    flow.do("case.accepted", ts="2026-11-02")
    assert flow.case.deadline(CAL) == Deadline(D("2026-11-09"))
    case = flow.do("case.supplement_requested", ts="2026-11-04")
    assert (case.state, case.previous) == (S.AWAITING_SUPPLEMENT, S.ACCEPTED)
    assert case.deadline(CAL) == Deadline(None)  # paused with 4 days left
    case = flow.do("case.supplemented", ts="2026-11-09")
    assert case.state is S.ACCEPTED and case.pauses == (Pause(D("2026-11-04"), D("2026-11-09")),)
    assert case.deadline(CAL) == Deadline(D("2026-11-12"))
    flow.do("case.step")
    case = flow.do("case.suspended", ts="2026-11-10")
    assert (case.previous, case.reason) == (S.IN_REVIEW, "需要现场核查")
    case = flow.do("case.resumed", ts="2026-11-11")
    assert case.state is S.IN_REVIEW and case.deadline(CAL) == Deadline(D("2026-11-13"))
    flow.reject("bad_body", "case.extended", days=6)  # legal 10 - promise 5
    flow.reject("bad_body", "case.extended", days=0)
    flow.reject("bad_body", "case.extended", days="3")
    flow.reject("missing_reason", "case.extended", reason=DROP)
    case = flow.do("case.extended", days=3)
    assert case.extension_days == 3 and case.deadline(CAL) == Deadline(D("2026-11-18"))
    flow.reject("second_extension", "case.extended", days=1)


def test_特别程序_across_spring_festival_pauses_only_working_days() -> None:
    flow = Flow(ANNUAL)  # 5 working days
    flow.do("case.accepted", ts="2026-02-10")
    # 2-11, 2-12, 2-13, Saturday 2-14 (调休), then 2-15 .. 2-23 off, 2-24
    assert flow.case.deadline(CAL) == Deadline(D("2026-02-24"))
    flow.do("case.suspended", ts="2026-02-13", reason="专家评审")
    case = flow.do("case.resumed", ts="2026-02-25")
    # 2-13, 2-14 and 2-24 were paused: 2-11, 2-12, then 2-25, 2-26, 2-27
    assert case.pauses == (Pause(D("2026-02-13"), D("2026-02-25")),)
    assert case.deadline(CAL) == Deadline(D("2026-02-27"))


def test_deadline_skips_national_day() -> None:
    flow = Flow(ANNUAL)
    flow.do("case.accepted", ts="2026-09-28")
    # 9-29, 9-30, (10-1..10-7 off), 10-8, 10-9, and Saturday 10-10 is a 调休 working day
    assert flow.case.deadline(CAL) == Deadline(D("2026-10-10"))


def test_days_are_counted_in_china_time() -> None:
    flow = Flow(ANNUAL)
    flow.do("case.accepted", ts="2026-11-02")
    case = flow.do("case.suspended", ts="2026-11-09T17:00:00+00:00")  # 01:00 on the 10th in 沈阳
    assert case.pauses == (Pause(D("2026-11-10")),)
    flow.reject("bad_ts", "case.resumed", ts="9999-12-31T23:00:00-05:00")


def test_a_clock_running_behind_never_ends_a_pause_before_it_began() -> None:
    flow = Flow(ANNUAL)
    flow.do("case.accepted", ts="2026-11-02")
    flow.do("case.suspended", ts="2026-11-10")
    case = flow.do("case.resumed", ts="2026-11-09T17:00:00+08:00")
    assert case.pauses == (Pause(D("2026-11-10"), D("2026-11-10")),)


def test_withdrawal() -> None:
    for state in (S.SUBMITTED, S.CORRECTION, S.IN_REVIEW, S.SUSPENDED):
        flow = reach(state, ANNUAL)
        case = flow.do("case.withdrawn", reason=DROP)
        assert case.state is S.WITHDRAWN and case.reason == ""
        flow.reject("illegal_transition", "case.resumed")
    reach(S.DECIDED, ANNUAL).reject("illegal_transition", "case.withdrawn")
    reach(S.SUBMITTED, ANNUAL).reject("bad_body", "case.withdrawn", reason=1)


def test_ratings_are_added_never_changed() -> None:
    flow = reach(S.DELIVERED, ANNUAL)
    case = flow.do("case.rated", score=2, comment="等待时间太长")
    assert case.needs_follow_up and case.state is S.RATED  # 差评
    case = flow.do("case.rated", score=5, comment="问题已解决")
    assert [r.score for r in case.ratings] == [2, 5] and case.needs_follow_up
    flow.reject("rating_changed", "case.rated", replaces=case.ratings[0].event)
    for score in (0, 6, "5", None):
        flow.reject("bad_body", "case.rated", score=score)
    flow.reject("bad_body", "case.rated", comment=None)


def test_差评_follow_up_closes_with_a_note_and_keeps_the_rating() -> None:
    flow = reach(S.DELIVERED, ANNUAL)
    flow.do("case.rated", score=1, comment="态度不好")
    flow.reject("bad_body", "case.followed_up", note="")
    flow.reject("wrong_department", "case.followed_up", by="jtj-shenhe")
    flow.reject("not_the_authority", "case.followed_up", VILLAGE)
    case = flow.do("case.followed_up", note="已回访致歉")
    assert not case.needs_follow_up and case.state is S.RATED
    assert [(f.note, f.by) for f in case.follow_ups] == [("已回访致歉", "sfj-shouli")]
    assert [r.score for r in case.ratings] == [1]  # the rating stays as given
    flow.reject("no_follow_up_needed", "case.followed_up")
    case = flow.do("case.rated", score=2, comment="仍不满意")  # a second 差评 opens another
    assert case.needs_follow_up
    assert len(flow.do("case.followed_up").follow_ups) == 2


def test_告知承诺_verification_after_the_decision() -> None:
    flow = pledged_lawyer()
    flow.review()
    case = flow.do("case.decided")
    assert case.needs_verification
    flow.reject("bad_body", "case.verified", outcome="maybe")
    flow.reject("bad_body", "case.verified", note=DROP)
    flow.reject("unknown_staff", "case.verified", by="hp-mzj")
    case = flow.do("case.verified", outcome="false", note="公安机关回函：有犯罪记录")
    assert not case.needs_verification and case.state is S.DECIDED
    assert case.verification is not None and case.verification.outcome == "false"
    flow.reject("already_verified", "case.verified")
    assert flow.do("case.terminated", reason="承诺不实，撤销许可").state is S.TERMINATED


@pytest.mark.parametrize(
    ("matter", "decision"),
    [
        (ANNUAL, {}),  # approved, but nothing was pledged
        (LAWYER, {"result_code": 1, "reason": "不符合条件", "result": DROP}),  # pledged, denied
    ],
)
def test_nothing_to_verify(matter: str, decision: dict[str, Any]) -> None:
    flow = pledged_lawyer() if matter == LAWYER else Flow(matter)
    flow.review()
    case = flow.do("case.decided", **decision)
    assert not case.needs_verification
    flow.reject("nothing_to_verify", "case.verified")


def test_delivery_needs_collector_and_method() -> None:
    flow = reach(S.DECIDED, ANNUAL)
    flow.reject("bad_body", "case.delivered", collector="")
    flow.reject("bad_body", "case.delivered", method=DROP)
    flow.reject("not_the_pickup", "case.delivered", CITY)


def test_pickup_elsewhere() -> None:
    flow = Flow(ANNUAL, pickup=HEPING)
    flow.review()
    flow.do("case.decided")
    flow.reject("not_the_pickup", "case.delivered", VILLAGE)
    assert flow.do("case.delivered", HEPING).state is S.DELIVERED


def test_deemed_acceptance() -> None:
    flow = Flow(ANNUAL)  # received Monday 2026-11-02
    assert not flow.case.deemed_accepted(CAL, D("2026-11-09"))  # 5th working day: still in time
    assert flow.case.deemed_accepted(CAL, D("2026-11-10"))
    flow.do("case.correction_requested")
    assert not flow.case.deemed_accepted(CAL, D("2026-11-30"))
    flow.do("case.corrected")
    assert not flow.case.deemed_accepted(CAL, D("2026-11-30"))  # a 补正 notice was given in time
    accepted = reach(S.ACCEPTED, ANNUAL).case
    assert not accepted.deemed_accepted(CAL, D("2026-11-30"))


# -- across cities ----------------------------------------------------------------------


def test_metro_matter_of_shenyang_accepted_in_fushun() -> None:
    flow = Flow(RIDE, window=FS_VILLAGE, location=FS_VILLAGE)
    assert (flow.case.authority, flow.case.window) == (JTJ, FS_VILLAGE)
    flow.review()
    flow.do("case.decided")
    flow.reject("not_the_pickup", "case.delivered", VILLAGE)
    case = flow.do("case.delivered", FS_VILLAGE)
    assert case.state is S.DELIVERED


def test_metro_matter_of_fushun_accepted_in_shenyang() -> None:
    flow = Flow(FS_METRO)
    assert flow.case.authority == FS_SFJ
    flow.reject("not_the_authority", "case.accepted", CITY, by="sfj-shenhe")
    flow.reject("unknown_staff", "case.accepted", FS_CITY, by="sfj-shenhe")
    flow.do("case.accepted", FS_CITY, by="fs-sfj")
    flow.do("case.step", FS_CITY, by="fs-sfj")
    assert flow.do("case.decided", FS_CITY, by="fs-sfj").state is S.DECIDED


# -- any sequence of events -------------------------------------------------------------

AUTHORS = [VILLAGE, VILLAGE_2, NEIGHBOUR, HEPING, CITY, SHENHE, SHENHE_VILLAGE, FS_CITY, FS_VILLAGE]
TYPES = [*sorted(EVENT_TYPES), "case.note", "case.reopened"]
STAFF_IDS = [
    "sfj-shouli",
    "sfj-shenhe",
    "sfj-qianfa",
    "sfj-retired",
    "scj-shenhe",
    "hp-mzj",
    "v-clerk",
    "fs-sfj",
    "jtj-shenhe",
    "nobody",
    7,
]
SUBMISSIONS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    (submission(ANNUAL), (SFJ,)),
    (submission(DIBAO), ("210102:mzj",)),
    (submission(RIDE), (JTJ,)),
    (submission(FS_METRO), (FS_SFJ,)),
    (
        submission(
            LAWYER,
            materials=[*provided("form", "idcard"), PREMISES_PLEDGED | {"id": "nocrime"}],
            pledge=PLEDGED,
        ),
        (SFJ,),
    ),
    (
        food(HEALTH_LATER, PREMISES_PLEDGED, pledge={"text": "承诺", "deadline": "2026-11-10"}),
        ("2101:scjgj",),
    ),
    (submission(RELIEF), ("210102:mzj",)),
    (submission(ANNUAL), (JTJ,)),
    ({"matter": ANNUAL}, (SFJ,)),
    ({}, ()),
]
MATERIAL_LISTS = [
    provided("form"),
    provided("health"),
    [HEALTH_LATER],
    [{"id": "health", "mode": "provided"}],
    [],
    "form",
    [1],
]
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "by": st.sampled_from(STAFF_IDS),
    "reason": st.sampled_from(["理由", "", 3]),
    "items": st.sampled_from(
        [[{"material": "form", "problem": "缺"}], [{"field": "f", "problem": "p"}], [], "x"]
    ),
    "materials": st.sampled_from(MATERIAL_LISTS),
    "pledge": st.sampled_from([None, {"text": "承诺"}, {"text": "承诺", "deadline": "2026-11-05"}]),
    "step": st.sampled_from([0, 1, 2, 3, -1, True, "0"]),
    "outcome": st.sampled_from(["pass", "return", "x"]),
    "to_step": st.sampled_from([0, 1, 2, None]),
    "opinion": st.sampled_from(["同意", "", None]),
    "days": st.sampled_from([1, 3, 5, 100, 0, -1]),
    "result_code": st.sampled_from([0, 1, 5, 6, 2, None]),
    "result": st.sampled_from([{"x": 1}, None, "x"]),
    "collector": st.sampled_from(["张三", ""]),
    "method": st.sampled_from(["邮寄", ""]),
    "score": st.sampled_from([1, 2, 3, 5, 0, 6, True]),
    "comment": st.sampled_from(["好", None]),
    "replaces": st.just("x"),
}
BODY = st.fixed_dictionaries({}, optional=FIELD_VALUES)
ONE_CHANGE = st.one_of([st.fixed_dictionaries({k: v}) for k, v in FIELD_VALUES.items()])
EXITS = ("case.withdrawn", "case.not_accepted", "case.terminated")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_sequence_folds_or_is_rejected(data: st.DataObject) -> None:
    """Mostly sensible moves (the right party, a legal body, perturbed), some pure noise."""
    make = Maker()
    case: Case | None = None
    for _ in range(data.draw(st.integers(1, 40), label="length")):
        to: tuple[str, ...] = ()
        number = make.number
        sensible = data.draw(st.integers(0, 3), label="sensible") > 0
        if case is None or data.draw(st.integers(0, 30)) == 0:
            type, author = "case.submitted", VILLAGE
            body, to = data.draw(st.sampled_from(SUBMISSIONS), label="submission")
        elif sensible:
            legal = sorted(t for s, t in TRANSITIONS if s == case.state) or TYPES
            weighted = [t for t in legal for _ in range(1 if t in EXITS else 4)]
            type = data.draw(st.sampled_from(weighted), label="type")
            author = legal_author(case, type)
            perturbed = data.draw(st.integers(0, 4), label="perturbed") == 0
            change = data.draw(ONE_CHANGE, label="change") if perturbed else {}
            body = legal_body(case, type) | change
            to = legal_to(case, type, author)
        else:
            type = data.draw(st.sampled_from(TYPES), label="type")
            author = data.draw(st.sampled_from(AUTHORS), label="author")
            body = data.draw(BODY, label="body")
            if data.draw(st.booleans(), label="elsewhere"):
                number = f"{NEIGHBOUR}-20261102-0001"
        # minutes since the previous event; an offline clock may run behind
        make.now += timedelta(minutes=data.draw(st.integers(-24 * 60, 4 * 24 * 60)))
        event = make(type, author, body, ts=make.now.isoformat(), to=to, case=number)
        try:
            after = FOLDER.apply(case, event)
        except CaseRejected:
            continue
        state = None if case is None else case.state
        rule = TRANSITIONS[(state, type)]
        assert after.state == (rule.target or (case.previous if case else None))
        assert after.history == (*(case.history if case else ()), event.id)
        assert after.number == event.case
        open_pauses = [p for p in after.pauses if p.end is None]
        assert len(open_pauses) == (1 if after.state in PAUSED else 0)
        # 送达回执: each (event, member) pair is owed or given, never both, never to its author
        assert not set(after.awaiting) & set(after.receipts)
        assert len(set(after.receipts)) == len(after.receipts)
        assert all(r.event in after.history for r in (*after.awaiting, *after.receipts))
        # 差评 rated after the latest follow-up (by position in the history) still wait
        position = {e: i for i, e in enumerate(after.history)}
        answered = max((position[f.event] for f in after.follow_ups), default=-1)
        assert after.needs_follow_up == any(
            r.score <= 2 and position[r.event] > answered for r in after.ratings
        )
        case = after
        hypothesis.event(f"reached {case.state}")


# -- 送达回执 ---------------------------------------------------------------------------


def receipt_scene(scene: str) -> tuple[Flow, str, str]:
    """A case and a receipt to fold into it: (flow, signer, id of the event confirmed)."""
    if scene == "decision":  # the authority's 办结, sent down to the accepting window
        flow = reach(S.DECIDED, ANNUAL)
        return flow, VILLAGE, flow.case.history[-1]
    if scene in ("pickup_submission", "pickup_decision"):  # 出件 at another station
        flow = Flow(ANNUAL, pickup=VILLAGE_2)
        if scene == "pickup_submission":
            return flow, VILLAGE_2, flow.case.history[0]
        flow.do("case.accepted")
        flow.do("case.decided")
        return flow, VILLAGE_2, flow.case.history[-1]
    if scene == "delivery":  # 出件 elsewhere: the pickup window tells the accepting one
        flow = Flow(ANNUAL, pickup=VILLAGE_2)
        flow.do("case.accepted")
        flow.do("case.decided")
        flow.do("case.delivered", VILLAGE_2)
        return flow, VILLAGE, flow.case.history[-1]
    if scene == "paused":  # a 补办 notice: the receipt neither ends nor restarts the pause
        flow = reach(S.AWAITING_SUPPLEMENT)
        return flow, VILLAGE, flow.case.history[-1]
    flow = Flow()
    submitted = flow.case.history[0]
    if scene == "own":  # the author is not owed a receipt for its own event
        return flow, VILLAGE, submitted
    if scene == "stranger":  # nor is a member the event was not sent to
        return flow, NEIGHBOUR, submitted
    if scene == "receipt_of_a_receipt":  # receipts get no receipts: no ping-pong
        flow.do("case.received", CITY, event=submitted, to=(VILLAGE,))
        return flow, VILLAGE, flow.case.history[-1]
    assert scene == "duplicate"
    flow.do("case.received", CITY, event=submitted)
    return flow, CITY, submitted


@pytest.mark.parametrize(
    ("scene", "refused"),
    [
        ("decision", None),
        ("pickup_submission", None),
        ("pickup_decision", None),
        ("delivery", None),
        ("paused", None),
        ("own", "not_an_addressee"),
        ("stranger", "not_an_addressee"),
        ("receipt_of_a_receipt", "not_an_addressee"),
        ("duplicate", "duplicate_receipt"),
    ],
)
def test_receipt_by_an_addressee_owed_one(scene: str, refused: str | None) -> None:
    flow, signer, held = receipt_scene(scene)
    before = flow.case
    if refused is not None:
        flow.reject(refused, "case.received", signer, event=held)
        return
    assert Receipt(held, signer) in before.awaiting
    after = flow.do("case.received", signer, event=held)
    assert after.receipts == (*before.receipts, Receipt(held, signer))
    assert Receipt(held, signer) not in after.awaiting
    assert len(after.awaiting) == len(before.awaiting) - 1
    assert (after.state, after.pauses, after.previous) == (
        before.state,
        before.pauses,
        before.previous,
    )
    assert (signer, True) in after.addressees(held)
    flow.reject("duplicate_receipt", "case.received", signer, event=held)


def test_what_each_event_is_owed() -> None:
    """One receipt per member addressed (a hub and its departments count once), author aside."""
    flow = Flow(ANNUAL, pickup=VILLAGE_2)
    submitted = flow.case.history[0]
    assert flow.case.awaiting == (Receipt(submitted, CITY), Receipt(submitted, VILLAGE_2))
    assert flow.case.addressees(submitted) == ((CITY, False), (VILLAGE_2, False))
    flow.do("case.accepted", to=(VILLAGE, VILLAGE_2, CITY, SFJ))
    accepted = flow.case.history[-1]
    assert [r for r in flow.case.awaiting if r.event == accepted] == [
        Receipt(accepted, VILLAGE),
        Receipt(accepted, VILLAGE_2),
    ]
    flow.do("case.received", CITY, event=submitted, to=(VILLAGE,))
    receipt = flow.case.history[-1]
    assert flow.case.addressees(receipt) == ()  # a receipt is owed nothing
    assert flow.case.addressees(submitted) == ((CITY, True), (VILLAGE_2, False))


def test_received_by_authority_needs_the_authority_host_on_the_submission() -> None:
    flow = Flow(ANNUAL, pickup=VILLAGE_2)
    submitted = flow.case.history[0]
    flow.reject("unknown_event", "case.received", event="f" * 64)
    flow.reject("unknown_event", "case.received", event=None)
    flow.do("case.received", VILLAGE_2, event=submitted)
    assert not flow.case.received_by_authority  # the pickup window holds it, not the authority
    case = flow.do("case.received", CITY, event=submitted)
    assert case.state is S.SUBMITTED and case.received_by_authority


def test_time_limits_count_events_when_the_folder_says(make: Maker) -> None:
    """A hub folds with its own estimate of when an event happened (a station clock off)."""
    body = submission(ANNUAL)
    submitted = make("case.submitted", VILLAGE, body, to=(SFJ,))
    hub_time = datetime.fromisoformat("2026-11-05T10:00:00+08:00")
    case = CaseFolder(F, lambda event: hub_time).apply(None, submitted)
    assert case.received == hub_time
    assert CaseFolder(F).apply(None, submitted).received == submitted.at


def test_blobs_named(make: Maker) -> None:
    good, other = "a" * 64, "b" * 64
    body = {
        "materials": [
            {"id": "form", "blobs": [good, "../etc/passwd", 7, good.upper()]},
            {"id": "idcard"},
            "not an entry",
            {"id": "photo", "blobs": [other]},
        ]
    }
    assert blobs_named(make("note.added", VILLAGE, body)) == [good, other]
    assert blobs_named(make("note.added", VILLAGE, {"materials": "none"})) == []


# -- rule 1 and the scheduled 容缺 termination --------------------------------------------


def test_acceptance_after_five_working_days_counts_from_receipt() -> None:
    flow = Flow(ANNUAL)  # received Monday 2026-11-02, promise 5 working days
    assert flow.case.deadline(CAL) is None
    assert flow.case.deadline(CAL, D("2026-11-09")) is None  # still in time to act
    assert flow.case.deadline(CAL, D("2026-11-10")) == Deadline(D("2026-11-09"))
    case = flow.do("case.accepted", ts="2026-11-10T10:00:00+08:00")
    assert case.deemed and case.accepted_at == case.received
    assert case.deadline(CAL) == Deadline(D("2026-11-09"))
    timely = Flow(ANNUAL)
    case = timely.do("case.accepted", ts="2026-11-09T10:00:00+08:00")
    assert not case.deemed and case.deadline(CAL) == Deadline(D("2026-11-16"))


def test_scheduled_termination_only_past_the_容缺_deadline() -> None:
    pledge = {"text": "承诺补交", "deadline": "2026-11-06"}
    flow = Flow(FOOD, materials=[*provided("form", "premises"), HEALTH_LATER], pledge=pledge)
    flow.do("case.accepted")
    auto = {"by": DROP, "cause": "deferred_overdue", "reason": "容缺材料逾期未补齐"}
    flow.reject("not_overdue", "case.terminated", ts="2026-11-06T23:00:00+08:00", **auto)
    flow.reject("not_the_authority", "case.terminated", VILLAGE, **auto)
    case = flow.do("case.terminated", ts="2026-11-07T00:10:00+08:00", **auto)
    assert case.state is S.TERMINATED
    supplied = Flow(FOOD, materials=[*provided("form", "premises"), HEALTH_LATER], pledge=pledge)
    supplied.do("case.accepted")
    supplied.do("case.supplement_requested")
    supplied.do("case.supplemented", materials=provided("health"))
    supplied.reject("not_overdue", "case.terminated", ts="2026-11-09T09:00:00+08:00", **auto)
    plain = Flow(ANNUAL)  # no pledge at all
    plain.do("case.accepted")
    plain.reject("not_overdue", "case.terminated", ts="2026-11-30T09:00:00+08:00", **auto)


def test_sign_receipt_makes_the_receipt_the_fold_awaits() -> None:
    flow, signer, held = receipt_scene("decision")
    author = flow.host  # the 办结 is the authority's
    receipt = sign_receipt(
        key(signer),
        author=signer,
        seq=7,
        prev="ab" * 32,
        ts="2026-11-20T10:00:00+08:00",
        case=flow.case.number,
        held=held,
        held_author=author,
    )
    assert (receipt.type, receipt.to, receipt.body) == ("case.received", (author,), {"event": held})
    assert Receipt(held, signer) in FOLDER.apply(flow.case, receipt).receipts
