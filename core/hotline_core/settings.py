"""Environment of every function, validated at cold start: a missing variable is an error that
names it, not a KeyError deep inside a request."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SettingsError(RuntimeError):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    directory_bucket: str = Field(alias="DIRECTORY_BUCKET", default="")
    directory_key: str = Field(alias="DIRECTORY_KEY", default="phonenumber.json")
    link_base_url: str = Field(alias="LINK_BASE_URL", default="")
    answer_window_seconds: int = Field(alias="ANSWER_WINDOW_SECONDS", default=120, gt=0)
    schedule_group: str = Field(alias="SCHEDULE_GROUP", default="")
    timer_target_arn: str = Field(alias="TIMER_TARGET_ARN", default="")
    scheduler_role_arn: str = Field(alias="SCHEDULER_ROLE_ARN", default="")
    timer_dead_letter_arn: str = Field(alias="TIMER_DEAD_LETTER_ARN", default="")
    sms_provider: Literal["sns", "end-user-messaging"] = Field(alias="SMS_PROVIDER", default="sns")
    sms_origination_identity: str = Field(alias="SMS_ORIGINATION_IDENTITY", default="")
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", default="")
    allow_replay_side_effects: bool = Field(alias="ALLOW_REPLAY_SIDE_EFFECTS", default=False)
    members_table_name: str = Field(alias="MEMBERS_TABLE_NAME", default="")
    benefits_table_name: str = Field(alias="BENEFITS_TABLE_NAME", default="")
    attempts_table_name: str = Field(alias="ATTEMPTS_TABLE_NAME", default="")
    pin_key_secret: str = Field(alias="PIN_KEY_SECRET", default="")
    # LINE: the channel's secret (JSON channelSecret, channelAccessToken) and the links table.
    # Without the secret's name, LINE is off: everyone gets SMS, the webhook answers 404.
    line_secret_name: str = Field(alias="LINE_SECRET_NAME", default="")
    line_table_name: str = Field(alias="LINE_TABLE_NAME", default="")

    @property
    def line_on(self) -> bool:
        return bool(self.line_secret_name and self.line_table_name)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, needs: tuple[str, ...] = ()
    ) -> Settings:
        """`needs` names the optional variables this function cannot work without."""
        env = os.environ if env is None else env
        try:
            settings = cls.model_validate(dict(env))
        except ValidationError as exc:
            problems = "; ".join(f"{err['loc'][0]}: {err['msg']}" for err in exc.errors())
            raise SettingsError(f"bad environment: {problems}") from exc
        if settings.sms_provider == "end-user-messaging" and not settings.sms_origination_identity:
            # The template's IAM scopes SendTextMessage to the account's identities.
            raise SettingsError(
                "SMS_PROVIDER end-user-messaging needs SMS_ORIGINATION_IDENTITY "
                "(the phone number, sender ID or pool to send from)"
            )
        missing = [name for name in needs if not env.get(name)]
        if missing:
            raise SettingsError(f"missing environment variable(s): {', '.join(missing)}")
        return settings
