"""Tracking and follow-up codes: random, easy to read aloud, stored only as SHA-256 digests.

A public tracking code (``LP-`` + 10 symbols, about 50 bits) only shows a status, and lookups
are rate-limited; a whistleblower's follow-up code (``WB-`` + 20 symbols, about 100 bits) also
lets its holder add information, so it is as long as a password should be.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

#: No 0/O, 1/I/L: codes are read over the phone and copied by hand.
ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PUBLIC_PREFIX: Final = "LP"
SECRET_PREFIX: Final = "WB"  # noqa: S105 - a prefix, not a secret
_CODE = re.compile(r"^(LP-[2-9A-HJKMNP-Z]{10}|WB-[2-9A-HJKMNP-Z]{20})$")


def new_code(*, secret: bool) -> str:
    """A fresh tracking (public) or follow-up (secret) code."""
    prefix, length = (SECRET_PREFIX, 20) if secret else (PUBLIC_PREFIX, 10)
    return prefix + "-" + "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalize(code: str) -> str | None:
    """The canonical form of a code as typed (case and spaces forgiven), or None if malformed."""
    cleaned = re.sub(r"\s+", "", code).upper()
    return cleaned if _CODE.fullmatch(cleaned) else None


def digest(code: str) -> bytes:
    """What is stored for a (canonical) code."""
    return hashlib.sha256(code.encode("ascii")).digest()
