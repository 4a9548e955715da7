"""Typed settings, read from HAVEN_* environment variables and `.env`."""

import ipaddress
import math
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me"  # noqa: S105 - the placeholder we refuse outside development
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 8
MIN_SECRET_BITS = 80  # estimated from how often each character appears
PROJECT_ROOT = Path(__file__).resolve().parents[2]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def resource_dir(name: str) -> Path:
    """A folder shipped beside the package (templates, static, migrations)."""
    for base in (PROJECT_ROOT, Path.cwd()):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"Haven cannot find its {name}/ folder; run it from the project root")


def secret_key_problem(key: str) -> str | None:
    """Why `key` is plainly not a random value fit for HAVEN_SECRET_KEY, or None if it may be.

    A random 32-character hex key (128 bits, the least a key generator gives) passes: it has 9
    distinct characters or more, and some 94 bits of estimated entropy at its most uneven."""
    if not key or key == DEFAULT_SECRET_KEY:
        return "is missing or left at its default"
    if any(character.isspace() for character in key):
        return "contains spaces or other whitespace"
    if len(key) < MIN_SECRET_LENGTH:
        return f"is too short (under {MIN_SECRET_LENGTH} characters)"
    if len(set(key)) < MIN_SECRET_DISTINCT:
        return f"does not look random (under {MIN_SECRET_DISTINCT} distinct characters)"
    if any(key[period:] == key[:-period] for period in range(1, len(key) // 2 + 1)):
        return "does not look random (it repeats a shorter pattern)"
    counts = Counter(key).values()
    entropy = -sum(count * math.log2(count / len(key)) for count in counts)
    if entropy < MIN_SECRET_BITS:
        return f"does not look random (an estimated {entropy:.0f} bits of entropy)"
    return None


def parse_allow_cidrs(value: str) -> list[IPNetwork]:
    """Read "10.0.0.0/8, 192.168.1.0/24" (commas and/or spaces) into networks; "" is none.

    A bare address means just that address. Raises ValueError with a message for the
    administrator (without the setting's name, which the settings loader adds)."""
    networks: list[IPNetwork] = []
    for part in re.split(r"[\s,]+", value.strip()):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=True))
        except ValueError:
            try:
                loose = ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f'"{part}" is not an IP address range; write ranges such as 10.0.0.0/8 or '
                    "192.168.1.0/24, separated by commas"
                ) from None
            raise ValueError(
                f'"{part}" is not the start of its range; did you mean {loose}?'
            ) from None
    return networks


class SettingsError(RuntimeError):
    """A setting that stops Haven from starting; its message is one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAVEN_", env_file=".env", extra="ignore")

    dev: bool = False
    database_url: str = "sqlite:///./data/haven.db"
    secret_key: str = DEFAULT_SECRET_KEY
    base_url: str = "http://localhost:8000"
    evidence_dir: Path = Path("./data/evidence")
    worker: Literal["on", "off"] = "on"
    school_name: str = "Haven School"
    timezone: str = "Europe/London"
    max_upload_mb: int = Field(default=10, ge=1, le=100)
    max_json_mb: int = Field(
        default=6, ge=1, le=50, description="Largest JSON or form body; a full roster fits in 6"
    )
    max_image_pixels: int = Field(default=40_000_000, ge=1_000_000, le=200_000_000)
    school_urn: str = ""

    webhook_allow_cidrs: str = Field(
        default="", description="Private ranges webhooks may reach, e.g. the school LAN relay"
    )
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_from: str = ""

    api_rate_limit: str = Field(
        default="600/minute", description="Requests one API token may make, e.g. 600/minute"
    )
    rate_limit_storage: str = Field(
        default="memory://", description="Where rate limits are counted (limits storage URI)"
    )

    session_idle_minutes: int = Field(default=60, ge=5, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 14)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_address_max_failures: int = Field(
        default=50, ge=1, le=10_000, description="Failed sign-ins from one address, any accounts"
    )
    log_level: str = "info"

    @field_validator("webhook_allow_cidrs")
    @classmethod
    def _check_cidrs(cls, value: str) -> str:
        try:
            parse_allow_cidrs(value)
        except ValueError as exc:
            raise PydanticCustomError("cidrs", str(exc)) from None
        return value

    @field_validator("api_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse

        try:
            usable = parse(value).amount >= 1
        except ValueError:
            usable = False
        if not usable:
            raise PydanticCustomError(
                "rate_limit", "write it as a count per period, e.g. 600/minute or 20/second"
            )
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        if self.dev:
            return self
        problem = secret_key_problem(self.secret_key)
        if problem:
            raise PydanticCustomError(
                "weak_secret",
                "HAVEN_SECRET_KEY {problem}: make a random one with `haven generate-secret-key`",
                {"problem": problem},
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return not self.dev


def load_settings(**overrides) -> Settings:
    """Build settings, turning validation failures into one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        prefix = f"HAVEN_{where.upper()}: " if where else ""
        raise SettingsError(prefix + first["msg"]) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
