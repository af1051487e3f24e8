"""Personal data at rest: phone numbers encrypted, looked up by a keyed hash (DESIGN §6)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class InvalidPhone(ValueError):
    """Not a valid mobile number in E.164 form."""


def normalize_phone(raw: str, default_region: str = "CN") -> str:
    """Parse a number as typed (spaces, dashes, national form) into E.164, or raise InvalidPhone."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(raw) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """For logs and staff screens that need no more: +86•••••5660."""
    return e164[:3] + "•" * max(len(e164) - 7, 0) + e164[-4:]


class DataCipher:
    """Encrypts personal fields and derives look-up hashes from one master key.

    Key rotation (issue 14, item 8): `old_keys` still decrypt and still match look-ups, while new
    data is encrypted and hashed under `master_key` only; `flask rotate-key` rewrites what the
    old keys made, after which they can be removed from the configuration."""

    def __init__(self, master_key: str, old_keys: tuple[str, ...] | list[str] = ()):
        keys = [master_key, *(k for k in old_keys if k and k != master_key)]
        fernets = [Fernet(base64.urlsafe_b64encode(_derive(k.encode(), b"diary/fernet"))) for k in keys]
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)
        self._hmac_keys = [_derive(k.encode(), b"diary/lookup-hash") for k in keys]
        self._hmac_key = self._hmac_keys[0]

    @property
    def rotating(self) -> bool:
        return len(self._hmac_keys) > 1

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes | str) -> str:
        return self._fernet.decrypt(token).decode()

    def is_current(self, token: bytes | str) -> bool:
        """Whether `token` was made under the current key (nothing to rotate)."""
        try:
            self._primary.decrypt(token)
        except InvalidToken:
            return False
        return True

    def lookup_hash(self, value: str) -> str:
        # Keyed, so a dump of the table cannot be reversed by hashing every possible number.
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str) -> list[str]:
        """The value's look-up hash under every configured key, the current one first: what a
        look-up matches while a rotation is under way."""
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in self._hmac_keys]


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def token_hash(token: str) -> str:
    """One-time codes and links are stored only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()
