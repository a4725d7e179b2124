"""Chinese messages for the reasons the protocol core gives (the clerk reads these)."""

from __future__ import annotations

from protocol.errors import ProtocolError

from .errors import ServiceError

SCOPE_LABELS = {
    "district": "仅限审批部门所在区县的窗口受理",
    "city": "本市各窗口均可受理",
    "metro": "都市圈内各窗口均可受理",
}
LEVEL_LABELS = {"city": "市级", "district": "区县级", "township": "乡镇（街道）级"}

_MESSAGES = {
    "unknown_matter": "该事项不在事项目录中。",
    "out_of_scope": "本窗口不在该事项的受理范围内。",
    "no_authority": "申请人所在地没有办理该事项的审批部门，请核对属地。",
    "out_of_area": "申请人所在地不在该事项的办理区域内。",
    "location_too_coarse": "属地区划代码不够具体，请填写到审批部门所在层级。",
    "missing_material": "缺少必交材料。",
    "unknown_material": "提交的材料不在该事项的材料清单中。",
    "not_deferrable": "该材料不允许容缺受理。",
    "not_pledgeable": "该材料不允许以告知承诺代替。",
    "missing_pledge": "容缺受理或告知承诺需要申请人签署承诺书（容缺须写明补交期限）。",
    "bad_pledge_deadline": "补交期限须在今天到承诺办结日之间。",
    "unknown_pickup": "所选出件窗口不在联邦配置中。",
    "unknown_member": "本站点尚未列入联邦配置，请确认注册申请已被批准。",
    "wrong_recipient": "受理部门与事项目录不一致。",
    "not_the_pickup": "本窗口不是该办件的出件窗口。",
    "not_the_window": "本窗口不是该办件的受理窗口。",
    "illegal_transition": "办件当前状态不允许此操作。",
    "bad_body": "申请数据不完整或格式有误。",
    "bad_ts": "本机时间异常，请检查电脑时钟。",
    "not_delegated": "该事项未下放本窗口即办，须由审批部门审批。",
    "not_a_window": "本站点不是窗口，不能办理该操作。",
    "unknown_staff": "当前窗口人员未列入联邦配置的工作人员名单。",
    "missing_reason": "须写明理由。",
    "rating_changed": "评价不能修改，只能追加新的评价。",
    "materials_outstanding": "尚有容缺材料未补齐，不能出证。",
}


def refusal(exc: ProtocolError, *, field: str | None = None) -> ServiceError:
    """A ServiceError for a refusal by the protocol core (case fold, routing)."""
    message = _MESSAGES.get(exc.reason, f"办件被拒绝（{exc.reason}）。")
    return ServiceError(exc.reason, message, detail=exc.detail, field=field, status=422)
