"""Building blocks of response models: the base every answer shares, times, the error body."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from ops.users import Role

#: A time as ISO 8601 with its offset, exactly as ``datetime.isoformat`` writes it.
Time = Annotated[
    dt.datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
#: Any JSON value (an audit entry's before and after, a device's attributes).
AnyJson = Annotated[Any, WithJsonSchema({})]


class Out(BaseModel):
    """A response model: every field is always present, and no other field may appear."""

    model_config = ConfigDict(
        extra="forbid", from_attributes=True, json_schema_serialization_defaults_required=True
    )


class ErrorDetail(Out):
    """The error object."""

    code: str
    message: str
    field: str | None


class ErrorOut(Out):
    """The one error body of every failure."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail


class UserOut(Out):
    """A user as the API shows it (never the password hash)."""

    id: int
    username: str
    role: Role
    display_name: str | None


class SessionOut(Out):
    """The signed-in user and when the session ends."""

    user: UserOut
    expires_at: Time
