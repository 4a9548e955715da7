"""The destination check endpoints must pass when they are saved."""

from urllib.parse import urlsplit

from app.core.errors import InvalidInput


def destination_check(settings):
    """The SSRF guard for endpoint URLs, configured from the settings."""

    def check(url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
            raise InvalidInput(
                "A webhook address must be an https:// address with a host name.",
                errors=[{"field": "url", "message": "must be https with a host"}],
            )

    return check
