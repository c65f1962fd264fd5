"""`POST /v1/feedback`: a caller's rating of one of its answers (wire format)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COMPLETION_ID_PREFIX = "chatcmpl-"


class FeedbackRequest(BaseModel):
    """`request_id` is the answer's `x-router-request-id` (its `id`, `chatcmpl-<request id>`, is accepted too);
    exactly one of `score` (0 to 1) or `thumbs` (`up` counts 1, `down` 0); an optional `comment`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=200)
    score: float | None = Field(None, ge=0, le=1)
    thumbs: Literal["up", "down"] | None = None
    comment: str | None = Field(None, max_length=2000)

    @field_validator("score", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> Any:
        if isinstance(value, bool | str):
            raise ValueError("score must be a number from 0 to 1")
        return value

    @field_validator("request_id")
    @classmethod
    def _bare_id(cls, value: str) -> str:
        bare = value.removeprefix(COMPLETION_ID_PREFIX)
        if not bare.isalnum() or not bare.isascii():
            raise ValueError("request_id must be the x-router-request-id of an answer (letters and digits)")
        return bare

    @model_validator(mode="after")
    def _one_rating(self) -> FeedbackRequest:
        if (self.score is None) == (self.thumbs is None):
            raise ValueError("send exactly one of score (0 to 1) or thumbs (up or down)")
        return self

    @property
    def value(self) -> float:
        """The rating on the 0..1 scale."""
        if self.score is not None:
            return float(self.score)
        return 1.0 if self.thumbs == "up" else 0.0
