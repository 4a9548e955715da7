"""Keys derived from HAVEN_SECRET_KEY, one for each purpose, and secrets sealed at rest with them.

Every key Haven uses is derived from the one setting with HKDF-SHA256 and a purpose label, so a
key for one job (the audit chain, TOTP seeds, the anchor log) never serves another, and
rotating HAVEN_SECRET_KEY re-keys them all (`haven rotate-secret-key`). Sealed values are Fernet
tokens (AES-128-CBC with HMAC-SHA256, from `cryptography`), which carry their own integrity
check: a value sealed under another key is refused, never decrypted into garbage.
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The purposes: each names the one job its key is for.
AUDIT_CHAIN = "haven audit chain v1"
AUDIT_ANCHOR = "haven audit anchor v1"
TOTP_SEEDS = "haven totp seeds v1"
SIGN_IN_THROTTLE = "haven sign-in throttle v1"
SIGN_IN_DEVICE = "haven sign-in device v1"


class SealedValueError(ValueError):
    """A sealed value that this key did not seal, or that was changed since."""


@lru_cache(maxsize=32)
def derive_key(secret_key: str, purpose: str) -> bytes:
    """32 bytes for one purpose, derived from the secret key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret_key.encode()
    )


def keyed_hash(secret_key: str, purpose: str, message: bytes) -> str:
    """HMAC-SHA256 of `message` under the purpose's key, as hex."""
    return hmac.new(derive_key(secret_key, purpose), message, hashlib.sha256).hexdigest()


def _fernet(secret_key: str, purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(secret_key, purpose)))


def seal(secret_key: str, purpose: str, plaintext: str) -> str:
    """Encrypt a secret Haven must read back (a TOTP seed) for storing."""
    return _fernet(secret_key, purpose).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, purpose: str, token: str) -> str:
    """Decrypt what `seal` made under the same key and purpose."""
    try:
        return _fernet(secret_key, purpose).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SealedValueError(
            "a sealed secret could not be read with this HAVEN_SECRET_KEY"
        ) from None
