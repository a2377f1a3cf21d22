"""Headers every answer carries, whichever layer sends it (middleware or the 500 handler)."""

from __future__ import annotations

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
]
#: Only over TLS (RFC 6797 §7.2); behind a proxy uvicorn's proxy_headers sets the scheme.
HSTS_HEADER = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NO_STORE_HEADER = (b"cache-control", b"no-store")
