"""The keys encrypting what the app keeps server-side (a launch's PKCE verifier and nonce, a session's
access token and CSRF token): ``cryptography``'s MultiFernet (AES-128-CBC + HMAC-SHA256, timestamped).

``HCC_SMART_SESSION_KEYS`` lists Fernet keys, comma-separated: the first encrypts, every one decrypts, so
a key is rotated by putting the new one first and dropping the old one once the sessions it encrypted
have expired (``HCC_SMART_SESSION_MINUTES``). Without it (demo mode only: production refuses to start,
``service.startup``) a random key is made per process: every session ends when the process restarts,
and several workers would not read each other's sessions.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr

from service.settings import SettingsError

KEYS_VARIABLE = "HCC_SMART_SESSION_KEYS"


def parse_keys(keys: SecretStr | None) -> list[Fernet]:
    """The Fernet keys of ``HCC_SMART_SESSION_KEYS``; :class:`SettingsError` for one that is not a key
    (the message never quotes it)."""
    if keys is None:
        return []
    fernets = []
    for position, key in enumerate((k.strip() for k in keys.get_secret_value().split(",")), start=1):
        if not key:
            continue
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeEncodeError) as exc:
            raise SettingsError(
                f"{KEYS_VARIABLE}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one "
                "with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from exc
    return fernets


def session_cipher(keys: SecretStr | None) -> MultiFernet:
    """The cipher of the app's server-side secrets: the configured keys, else one random key (demo)."""
    fernets = parse_keys(keys) or [Fernet(Fernet.generate_key())]
    return MultiFernet(fernets)
