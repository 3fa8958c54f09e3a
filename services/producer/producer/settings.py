"""The producer's settings: the core ones plus the HTTP edge (bind address, auth, limits).

Read once per process from the environment (and ``.env``); nothing else in the producer reads it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from taskq.settings import PLACEHOLDER_SECRETS, CoreSettings


class ProducerSettings(CoreSettings):
    api_host: str = Field(default="0.0.0.0", description="address uvicorn binds")
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    api_token: SecretStr | None = Field(
        default=None, description="when set, Bearer auth on everything but /healthz /readyz /metrics"
    )
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    rate_limit_per_minute: int = Field(
        default=0, ge=0, description="requests per minute per client address, per process; 0 is off"
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="comma-separated proxy addresses/CIDRs whose X-Forwarded-For names the client; "
        "from anyone else the header is ignored",
    )
    require_persistence: bool = Field(
        default=True, description="readiness fails when Redis has no AOF (RDB snapshots only, or nothing)"
    )
    log_level: str = Field(default="info", pattern=r"^(?i:debug|info|warning|error|critical)$")
    sse_max_streams: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Server-Sent Events streams (GET /events, GET /jobs/{id}/events) one producer process "
        "serves at once, each on its own Redis connection; one more is a 503",
    )
    redis_max_connections: int = Field(
        default=256, ge=4, le=10_000, description="connection pool size of one producer process"
    )

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # API_TOKEN= (empty) in an env file means "no auth", not "the empty string is the token".
        return None if value == "" else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7 reads better in an env file than a JSON list.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_token(self) -> ProducerSettings:
        if self.environment == "production" and self.api_token is not None:
            token = self.api_token.get_secret_value()
            if token in PLACEHOLDER_SECRETS or len(token) < 16:
                raise ValueError("API_TOKEN is a placeholder or shorter than 16 characters")
        return self
