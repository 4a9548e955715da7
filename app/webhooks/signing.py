"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with its own library."""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "msg_" + secrets.token_hex(12)


def signature_header(secrets_in_use: list[str], webhook_id: str, at: datetime, body: str) -> str:
    """`v1,<sig>` for each secret, space separated (both during a secret rotation)."""
    return " ".join(Webhook(secret).sign(webhook_id, at, body) for secret in secrets_in_use)


def headers_for(secrets_in_use: list[str], webhook_id: str, at: datetime, body: str) -> dict:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature_header(secrets_in_use, webhook_id, at, body),
        "content-type": "application/json",
        "user-agent": "Haven-Webhooks/1",
    }
