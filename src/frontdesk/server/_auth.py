"""Who may use the server: one API token, bearer headers, console sessions and CSRF tokens.

The token is ``$FRONTDESK_API_TOKEN``, else the one stored in the home's ``api-token`` file
(mode 0600), generated on first start. The API takes it as ``Authorization: Bearer <token>``.
The console's login form takes it once with the operator's name and sets a session cookie
(http-only, ``SameSite=Strict``) signed with a key derived from the token, so changing the
token ends every session. The operator's name in the session is who decides approvals.

A request authenticated by its cookie alone could have been sent by another site, so every
such request that changes something must carry the session's CSRF token (a form field, or
the ``X-CSRF-Token`` header for the console's script). Bearer requests need none: a browser
never adds that header on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "FRONTDESK_API_TOKEN"
"""Environment variable holding the API token; it wins over the home's token file."""
TOKEN_FILENAME = "api-token"
"""The file in the home holding the generated token."""
SESSION_COOKIE = "frontdesk_session"
"""The console's session cookie."""
LOGIN_COOKIE = "frontdesk_login"
"""A short-lived cookie tying the login form to the browser that loaded it."""
CSRF_HEADER = "x-csrf-token"
"""The header the console's script sends the CSRF token in."""
CSRF_FIELD = "csrf_token"
"""The form field holding the CSRF token."""
SESSION_TTL = 12 * 3600.0
"""How long a console session lasts, in seconds."""
MAX_NAME = 64
"""The longest operator name."""
MIN_TOKEN = 16
"""The shortest token accepted from the environment."""


class TokenTooShort(ValueError):
    """``$FRONTDESK_API_TOKEN`` is set but too short to be a secret."""


@dataclass(frozen=True)
class ApiToken:
    """The server's token and where it came from."""

    value: str
    """The token."""
    source: str
    """``env`` or the path of the token file."""
    created: bool
    """True when it was generated just now (print it once)."""


def load_token(home: Path) -> ApiToken:
    """``$FRONTDESK_API_TOKEN``, else the home's token file, else a new token written there
    with mode 0600 (atomically: a concurrent start reads a whole token or makes its own)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        if len(env) < MIN_TOKEN:
            raise TokenTooShort(f"{TOKEN_ENV} must be at least {MIN_TOKEN} characters")
        return ApiToken(env, "env", False)
    path = home / TOKEN_FILENAME
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return ApiToken(existing, str(path), False)
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
        try:
            os.link(temporary, path)  # never replaces a token another process just wrote
        except FileExistsError:
            return ApiToken(path.read_text().strip(), str(path), False)
    finally:
        temporary.unlink(missing_ok=True)
    return ApiToken(token, str(path), True)


@dataclass(frozen=True)
class Identity:
    """Who made a request."""

    name: str
    """The operator's name, or ``api`` for a bearer token."""
    via: str
    """``bearer`` or ``session``."""
    nonce: str = ""
    """The session's nonce (its CSRF token derives from it)."""


class Authenticator:
    """Checks bearer tokens, issues and checks session cookies and CSRF tokens."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._key = hashlib.sha256(b"frontdesk-console-session\0" + self._token).digest()

    def _sign(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def check_token(self, candidate: str) -> bool:
        """Whether ``candidate`` is the token (in constant time)."""
        return hmac.compare_digest(candidate.strip().encode(), self._token)

    def bearer(self, header: str | None) -> Identity | None:
        """The identity of an ``Authorization: Bearer`` header with the right token."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not self.check_token(value):
            return None
        return Identity("api", "bearer")

    def new_session(self, name: str, now: float) -> str:
        """A session cookie value for operator ``name``."""
        encoded = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
        body = f"v1.{encoded}.{int(now)}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def session(self, cookie: str | None, now: float) -> Identity | None:
        """The identity in a session cookie, if it is genuine and not expired."""
        if not cookie or cookie.count(".") != 4:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        _, encoded, issued, nonce = body.split(".")
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            fresh = 0 <= now - int(issued) < SESSION_TTL
        except ValueError:
            return None
        return Identity(name, "session", nonce) if fresh else None

    def csrf_token(self, identity: Identity) -> str:
        """The CSRF token of a session."""
        return self._sign(f"csrf:{identity.nonce}")

    def check_csrf(self, identity: Identity, candidate: str | None) -> bool:
        """Whether ``candidate`` is the session's CSRF token."""
        return bool(candidate) and hmac.compare_digest(str(candidate), self.csrf_token(identity))

    def login_token(self, nonce: str) -> str:
        """The login form's CSRF token, tied to the login cookie's nonce."""
        return self._sign(f"login:{nonce}")


def now() -> float:
    """The wall clock, for session ages."""
    return time.time()


def valid_name(name: str) -> str | None:
    """The operator name trimmed, or None if it is empty, too long or has control characters."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return name


LOOPBACK = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


def bind_warning(host: str) -> str | None:
    """A warning when ``host`` is not a loopback address, or None."""
    if host.startswith(LOOPBACK) or host in ("[::1]",):
        return None
    return (
        f"warning: listening on {host}, which other machines may reach; anyone with the API "
        "token can act on runs and approvals. Put TLS in front of it, or bind 127.0.0.1"
    )
