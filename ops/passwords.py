"""Password hashing with argon2id.

Argon2 is slow and memory-hungry on purpose, so async callers hash in a worker thread, and only a
few hashes run at once: a burst of logins must not stall the loop nor take gigabytes of memory.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Hashes computed at the same time per event loop (each takes ``memory_cost`` KiB).
MAX_CONCURRENT_HASHES = 4

_HASHER = PasswordHasher()
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_dummy_hash: str | None = None


def hash_password_blocking(password: str) -> str:
    """Return the argon2id hash of ``password``; blocks for tens of milliseconds."""
    return _HASHER.hash(password)


def verify_password_blocking(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; a malformed hash never matches."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with weaker parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


async def hash_password(password: str) -> str:
    """Hash ``password`` in a worker thread."""
    async with _slot():
        return await asyncio.to_thread(hash_password_blocking, password)


async def verify_password(stored_hash: str, password: str) -> bool:
    """Check ``password`` against ``stored_hash`` in a worker thread."""
    async with _slot():
        return await asyncio.to_thread(verify_password_blocking, stored_hash, password)


async def dummy_hash() -> str:
    """A real hash of a random secret, for spending the same time when there is no user."""
    global _dummy_hash  # noqa: PLW0603 - computed once, on first need, not at import
    if _dummy_hash is None:
        _dummy_hash = await hash_password(secrets.token_urlsafe(32))
    return _dummy_hash


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
    return slots
