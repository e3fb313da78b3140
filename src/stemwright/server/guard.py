"""Request checks that keep other web sites out of the studio: a ``Host`` allow-list (DNS rebinding), an origin
check on state-changing requests (cross-site requests), and the access token of token mode.

The approach is the one local web tools that run code use (Jupyter's ``allow_remote_access``/``local_hostnames``
and its XSRF check): a browser page on another origin can *send* requests to a loopback server, but it cannot
make them carry the server's own ``Host`` or ``Origin``, nor a token it was never shown.
"""
from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# Names that always mean "this machine" (RFC 6761 reserves localhost; ::1 is the IPv6 loopback).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
MIN_TOKEN_LENGTH = 16
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values a same-origin page or the user (address bar, bookmark) produce.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def normalise_host(host: str) -> str:
    """A host name as compared here: lower case, no brackets around IPv6 literals, no trailing dot."""
    return host.strip().lower().strip("[]").rstrip(".")


def split_host_header(value: str) -> str | None:
    """The host part of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), or None if malformed."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (len(value) > end + 1 and not value[end + 1:].startswith(":")):
            return None
        return normalise_host(value[1:end])
    host, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return normalise_host(host)


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` values the server answers. ``any_host`` only for a wildcard bind in token mode, where the
    token (which a rebinding page cannot know) protects instead, and users reach the server by any of its names."""

    allowed: frozenset[str]
    any_host: bool = False

    @classmethod
    def for_bind(cls, bound: str, extra: tuple[str, ...] = (), token: bool = False) -> HostPolicy:
        bound_n = normalise_host(bound)
        names = {*LOOPBACK_NAMES, *(normalise_host(h) for h in extra)}
        if bound_n not in WILDCARD_ADDRESSES:
            names.add(bound_n)
        return cls(frozenset(names), any_host=token and bound_n in WILDCARD_ADDRESSES and not extra)

    def allows(self, host_header: str | None) -> bool:
        host = split_host_header(host_header or "")
        if host is None:
            return False
        return self.any_host or host in self.allowed


def cross_origin_reason(method: str, host_header: str | None, origin: str | None, fetch_site: str | None) -> str | None:
    """Why a request must be refused as cross-origin, or None. Only state-changing methods are checked: a
    foreign page can send a GET but cannot read its answer (no CORS headers are ever sent)."""
    if method.upper() not in STATE_CHANGING:
        return None
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCH:
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:40]})"
    if origin is None:
        return None  # not a browser (curl, scripts): browsers send Origin on every non-GET request
    parts = urlsplit(origin.strip())
    if origin.strip() == "null" or parts.scheme not in ("http", "https") or not parts.netloc:
        return "request from an opaque or unknown origin refused"
    if parts.netloc.lower() != (host_header or "").strip().lower():
        return f"cross-origin request from {origin[:80]} refused"
    return None


def given_token(headers: Mapping[str, str], query_token: str | None, cookie: str | None) -> str | None:
    """The token a request carries: ``X-Stemwright-Token``, ``Authorization: Bearer`` (scheme case-insensitive,
    RFC 9110 section 11.1), ``?token=`` or the cookie, in that order."""
    direct = headers.get("x-stemwright-token")
    if direct:
        return direct.strip()
    scheme, _, value = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query_token or cookie or None


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison that never raises (a non-ASCII token is simply wrong)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def check_token(token: str) -> str:
    """A token usable in headers, cookies and URLs: printable ASCII without spaces, at least 16 characters."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the access token must be at least {MIN_TOKEN_LENGTH} characters long (got {len(token)})")
    if not all(33 <= ord(ch) < 127 for ch in token) or any(ch in token for ch in ";,\"\\&#%"):
        raise ValueError("the access token must be printable ASCII without spaces, quotes, ';', ',', '&', '#', '%' or '\\'")
    return token


def is_wildcard(host: str) -> bool:
    return normalise_host(host) in WILDCARD_ADDRESSES
