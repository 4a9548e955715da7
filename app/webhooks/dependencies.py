"""The destination check endpoints must pass when they are saved."""

from app.core.config import parse_allow_cidrs
from app.core.http import check_url


def destination_check(settings):
    """The SSRF guard for endpoint URLs (checked again at every connection)."""
    allow = parse_allow_cidrs(settings.webhook_allow_cidrs)

    def check(url: str) -> None:
        check_url(url, allow=allow)

    return check
