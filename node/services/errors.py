"""The one error services raise: a machine-readable reason and a message for the clerk."""

from __future__ import annotations


class ServiceError(Exception):
    """An action refused; nothing changed.

    ``reason`` is a stable snake_case code (for the API and tests), ``message`` the Chinese
    sentence shown at the window, ``detail`` optional technical text (English, no personal
    data), ``field`` the form field at fault when there is one, ``status`` the HTTP status
    the JSON API answers with.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int = 400,
        detail: str = "",
        field: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail or message}")
        self.reason = reason
        self.message = message
        self.status = status
        self.detail = detail
        self.field = field

    def as_dict(self) -> dict[str, str]:
        out = {"error": self.reason, "message": self.message, "detail": self.detail}
        if self.field is not None:
            out["field"] = self.field
        return out


def refused(reason: str, message: str, field: str | None = None, detail: str = "") -> ServiceError:
    """A business rule of the window refused the input (HTTP 422)."""
    return ServiceError(reason, message, status=422, field=field, detail=detail)


def not_found(what: str, message: str) -> ServiceError:
    return ServiceError(f"no_such_{what}", message, status=404)
