"""Signing webhook bodies: ``X-Zapvisor-Signature: sha256=<hex HMAC-SHA256 of the exact body>``.

Receivers recompute the HMAC over the raw body bytes with the subscription's secret and compare
in constant time (:func:`verify` does exactly that; it is what the tests use as a receiver).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Zapvisor-Signature"
EVENT_HEADER = "X-Zapvisor-Event"
DELIVERY_HEADER = "X-Zapvisor-Delivery"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant-time compare)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)
