"""Digests of values status may show but must not give away (pure)."""

from __future__ import annotations

import hashlib
import hmac


def keyed_digest(payload: bytes, key: bytes, salt: bytes) -> str:
    """HMAC-SHA256 with the install's key (LLMAPP_DIGEST_KEY): status shows it, and without the key
    nobody can test guesses of a secret in `payload` against it offline. No key (a local run): a
    SHA-256 salted per use, which guards less."""
    if key:
        return "hmac-sha256:" + hmac.new(key, payload, hashlib.sha256).hexdigest()[:32]
    return "sha256:" + hashlib.sha256(salt + payload).hexdigest()[:32]
