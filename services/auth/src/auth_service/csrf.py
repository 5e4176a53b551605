"""CSRF protection of the sign-in form: a signed double-submit cookie (OWASP's pattern).

The browser holds a random cookie; the form's hidden `csrf_token` is its HMAC-SHA256 under
a key derived from KEY_ENCRYPTION_KEY. Another site can make a browser post the form, but
cannot read the cookie nor forge its HMAC, and (with the `__Host-` prefix over https)
cannot plant a cookie of its own either. This also stops login CSRF: signing a victim in
to the attacker's account needs a token bound to the victim's cookie.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from auth_service.sign_in_sessions import well_formed

_KEY_INFO = b"auth-service sign-in form csrf v1"
FIELD = "csrf_token"


@dataclass(frozen=True)
class CsrfProtection:
    key: bytes
    cookie_name: str

    @classmethod
    def of(cls, key_encryption_key: str, cookie_name: str) -> "CsrfProtection":
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
            key_encryption_key.encode("utf-8")
        )
        return cls(key, cookie_name)

    def cookie(self, current: str | None) -> str:
        """The browser's cookie, kept when it has a well-formed one, else a new one."""
        return current if current and well_formed(current) else secrets.token_urlsafe(32)

    def token(self, cookie: str) -> str:
        return hmac.new(self.key, cookie.encode("ascii"), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token or not well_formed(cookie):
            return False
        return hmac.compare_digest(self.token(cookie), token)
