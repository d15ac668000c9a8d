"""Who is asking: credentials from settings, the login session, and CSRF tokens.

- Credentials: WEB_TOKEN (`Authorization: Bearer <token>`) and/or WEB_USER with
  WEB_PASSWORD (`Authorization: Basic ...`, or the login form). With none configured,
  everyone reads as `anonymous` and no action can be enabled.
- The login form sets a session cookie: the identity and an expiry, signed with
  WEB_SECRET_KEY (HMAC-SHA256) over a digest of the configured credentials, so changing
  a credential ends every session. HttpOnly, SameSite=Lax, Secure over HTTPS.
- CSRF (signed double submit): a random nonce in a SameSite=Strict cookie, and in every
  form the nonce with its HMAC bound to the identity. A form is accepted only when the
  field's nonce is the cookie's and the signature is valid for whoever submits it. API
  clients that send an Authorization header send no cookie and need no token.

Every comparison of a secret is constant-time (hmac.compare_digest).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from data_platform.errors import ConfigError
from data_platform.settings import Settings

SESSION_COOKIE = "dp_session"
CSRF_COOKIE = "dp_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: `name` is the user, `token`, or `anonymous`."""

    name: str
    via: str  # basic, bearer, session, none

    @property
    def actor(self) -> str:
        """How the caller is recorded (load_events.actor): `web:<name>`."""
        return f"web:{self.name}"


ANONYMOUS = Identity("anonymous", "none")


def _secret(value: object) -> str | None:
    text = value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]
    return text or None


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class Credentials:
    """The configured credentials and the key that signs sessions and CSRF tokens.

    Raises ConfigError when WEB_USER and WEB_PASSWORD are not set together."""

    def __init__(self, settings: Settings) -> None:
        self.token = _secret(settings.web_token)
        self.user = settings.web_user or None
        self.password = _secret(settings.web_password)
        if bool(self.user) != bool(self.password):
            raise ConfigError("WEB_USER and WEB_PASSWORD go together: set both or neither")
        configured = _secret(settings.web_secret_key)
        self.key = configured.encode() if configured else secrets.token_bytes(32)
        material = "\0".join([self.token or "", self.user or "", self.password or ""])
        self.fingerprint = hashlib.sha256(material.encode()).hexdigest()

    @property
    def required(self) -> bool:
        """Are any credentials configured (then every page needs them)?"""
        return bool(self.token or self.user)

    def _sign(self, *parts: str) -> str:
        message = "|".join(parts).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    # --- credentials ----------------------------------------------------------------------

    def check_token(self, token: str) -> Identity | None:
        if self.token and token and _equal(token, self.token):
            return Identity("token", "bearer")
        return None

    def check_password(self, user: str, password: str) -> Identity | None:
        if not (self.user and self.password):
            return None
        # Both compared, always: the time taken tells nothing about which was wrong.
        user_ok = _equal(user, self.user)
        password_ok = _equal(password, self.password)
        return Identity(self.user, "basic") if user_ok and password_ok else None

    def check_header(self, authorization: str | None) -> Identity | None:
        """The identity of an `Authorization: Bearer ...` or `Basic ...` header."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return self.check_token(value)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, sep, password = decoded.partition(":")
            return self.check_password(user, password) if sep else None
        return None

    # --- the login session ------------------------------------------------------------------

    def session_cookie(self, identity: Identity, now: float | None = None) -> str:
        """The signed session value for `identity`, valid for SESSION_SECONDS."""
        expires = str(int((now or time.time()) + SESSION_SECONDS))
        payload = base64.urlsafe_b64encode(json.dumps([identity.name, expires]).encode())
        body = payload.decode().rstrip("=")
        return f"{body}.{self._sign('session', body, self.fingerprint)}"

    def check_session(self, cookie: str | None, now: float | None = None) -> Identity | None:
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        if not _equal(signature, self._sign("session", body, self.fingerprint)):
            return None
        try:
            name, expires = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            return None
        if int(expires) < (now or time.time()):
            return None
        return Identity(str(name), "session")

    # --- CSRF -------------------------------------------------------------------------------

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    def csrf_token(self, nonce: str, identity: Identity) -> str:
        """The form field for the cookie's `nonce` and the caller."""
        return f"{nonce}.{self._sign('csrf', nonce, identity.name)}"

    def check_csrf(self, nonce: str | None, token: str | None, identity: Identity) -> bool:
        """Does the form's `token` belong to the cookie's `nonce` and to `identity`?"""
        if not nonce or not token or "." not in token:
            return False
        given_nonce, _, signature = token.rpartition(".")
        return _equal(given_nonce, nonce) and _equal(
            signature, self._sign("csrf", nonce, identity.name)
        )
