"""Who is asking: credentials from settings, the login session, and CSRF tokens.

- Credentials: WEB_TOKEN (`Authorization: Bearer <token>`) and/or WEB_USER with
  WEB_PASSWORD (`Authorization: Basic ...`, or the login form). With none configured,
  everyone reads as `anonymous` and no action can be enabled.
- The login form sets a session cookie: the identity and a random session id,
  timestamped and signed (itsdangerous) with WEB_SECRET_KEY and a digest of the
  configured credentials, so changing a credential ends every session; Log out ends its
  own (the id is recorded as revoked: `web.sessions`). HttpOnly, SameSite=Lax, Secure
  over HTTPS (behind a proxy too: `X-Forwarded-Proto` from WEB_TRUSTED_PROXIES).
- CSRF (signed double submit): a random nonce in a SameSite=Strict cookie, and in every
  form the nonce and the identity, signed. A form is accepted only when the
  field's nonce is the cookie's and the signature is valid for whoever submits it. API
  clients that send an Authorization header send no cookie and need no token.

Every comparison of a secret is constant-time (hmac.compare_digest).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

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
    sid: str | None = None  # a login session's random id (revoked by Log out)

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

    def seal(self, purpose: str, value: object) -> str:
        """`value` (JSON) signed for `purpose` with the key and the credentials'
        fingerprint, timestamped (itsdangerous)."""
        return URLSafeTimedSerializer(self.key, salt=f"{purpose}|{self.fingerprint}").dumps(value)

    def unseal(self, purpose: str, sealed: str | None, max_age: int | None = None) -> object:
        """The value `seal` signed for `purpose`, or None when it is missing, forged, for
        another purpose or credentials, or older than `max_age` seconds."""
        if not sealed:
            return None
        serializer = URLSafeTimedSerializer(self.key, salt=f"{purpose}|{self.fingerprint}")
        try:
            return serializer.loads(sealed, max_age=max_age)
        except BadSignature:  # also SignatureExpired
            return None

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

    def session_cookie(self, identity: Identity) -> str:
        """The signed session value for `identity`, valid for SESSION_SECONDS, with a
        random session id that Log out revokes (`web.sessions`)."""
        return self.seal("session", {"name": identity.name, "sid": secrets.token_urlsafe(18)})

    def check_session(self, cookie: str | None) -> Identity | None:
        """The session's identity, its id in `sid`; None for a cookie that is missing,
        forged, expired or of another shape. Whether it was revoked, the caller asks."""
        value = self.unseal("session", cookie, max_age=SESSION_SECONDS)
        if not isinstance(value, dict):
            return None
        name, sid = value.get("name"), value.get("sid")
        if not isinstance(name, str) or not isinstance(sid, str):
            return None
        return Identity(name, "session", sid)

    # --- CSRF -------------------------------------------------------------------------------

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    def csrf_token(self, nonce: str, identity: Identity) -> str:
        """The form field for the cookie's `nonce` and the caller."""
        return self.seal("csrf", [nonce, identity.name])

    def check_csrf(self, nonce: str | None, token: str | None, identity: Identity) -> bool:
        """Does the form's `token` belong to the cookie's `nonce` and to `identity`?"""
        if not nonce:
            return False
        value = self.unseal("csrf", token)
        if not isinstance(value, list) or len(value) != 2:
            return False
        return _equal(str(value[0]), nonce) and value[1] == identity.name
