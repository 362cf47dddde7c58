"""Secrets at rest: hashed when we only need to check them, sealed when we must use them.

An account's auth token authenticates API requests (we keep a SHA-256 digest: the token
is 128 random bits, so a slow hash adds nothing) and keys the HMAC that signs webhooks
(we keep it sealed with the platform's secret key, so a copy of the database alone
reveals no token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken


def new_token() -> str:
    return secrets.token_hex(16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"voice auth token sealing\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(value: str, secret_key: str) -> bytes:
    return _fernet(secret_key).encrypt(value.encode())


def unseal(sealed: bytes, secret_key: str) -> str:
    try:
        return _fernet(secret_key).decrypt(bytes(sealed)).decode()
    except InvalidToken as exc:
        raise ValueError(
            "an auth token cannot be unsealed: SECRET_KEY differs from the one it was sealed "
            "with (var/secret_key when SECRET_KEY is unset)"
        ) from exc
