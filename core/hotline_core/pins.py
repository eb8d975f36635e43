"""Hotline PINs: a directory entry keeps only a salted scrypt hash of its PIN, and a verified
PIN is carried through the rest of one call as a proof bound to that call, never as the PIN.

The format is `scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>`: the cost parameters
travel with the hash so they can be raised later without breaking older entries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PIN_SHAPE = re.compile(r"^[0-9]{4,8}$")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB, tens of ms: cheap per call, dear per guess
SALT_BYTES = 16
HASH_BYTES = 32
MAX_N = 2**17  # a hand-edited directory must not make every call allocate gigabytes
_FORMAT = re.compile(
    r"^scrypt\$(?P<n>[0-9]+)\$(?P<r>[0-9]+)\$(?P<p>[0-9]+)"
    r"\$(?P<salt>[A-Za-z0-9+/=]+)\$(?P<hash>[A-Za-z0-9+/=]+)$"
)


class PinHashError(ValueError):
    """A stored PIN hash that cannot be used (the message never contains the hash)."""


def is_pin_shaped(pin: str) -> bool:
    return bool(PIN_SHAPE.fullmatch(pin))


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    if not is_pin_shaped(pin):
        raise ValueError("a PIN is 4 to 8 digits")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_pin_hash(stored: str) -> None:
    """Raise PinHashError unless `stored` is a hash `verify_pin` can use."""
    _parse(stored)


def verify_pin(pin: str, stored: str) -> bool:
    n, r, p, salt, expected = _parse(stored)
    if not is_pin_shaped(pin):
        return False
    return hmac.compare_digest(_scrypt(pin, salt, n, r, p, len(expected)), expected)


def pin_proof(stored: str, *, contact_id: str, phone: str) -> str:
    """What the contact flow hands back after a right PIN (e.g. with the menu choice): only
    someone holding the stored hash can make it, and it is worth nothing on another call."""
    mac = hmac.new(stored.encode(), f"{contact_id}#{phone}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def check_proof(proof: str, stored: str, *, contact_id: str, phone: str) -> bool:
    # A proof is hex: anything else (a lone surrogate from a forged parameter) is no proof,
    # not an exception on the caller's line.
    if not proof or not proof.isascii():
        return False
    expected = pin_proof(stored, contact_id=contact_id, phone=phone)
    return hmac.compare_digest(proof.encode(), expected.encode())


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    match = _FORMAT.fullmatch(stored) if isinstance(stored, str) else None
    if match is None:
        raise PinHashError(
            "pin_hash is not scrypt$n$r$p$salt$hash (write it with `hotline directory set-pin`)"
        )
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    if n < 2 or n > MAX_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise PinHashError("pin_hash has scrypt parameters out of range")
    try:
        salt = base64.b64decode(match["salt"], validate=True)
        digest = base64.b64decode(match["hash"], validate=True)
    except ValueError as exc:
        raise PinHashError("pin_hash has bad base64") from exc
    if len(salt) < 8 or len(digest) < 16:
        raise PinHashError("pin_hash salt or hash is too short")
    return n, r, p, salt, digest


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        pin.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * r * n + 2**20
    )


# --- The benefits line's PINs: the table is keyed by a keyed hash of each PIN ----------------
# A campaign PIN must be found with one read (the caller waits on the line), so it cannot be
# salted per row like a directory PIN; an HMAC with the stack's own secret key makes the table
# useless without that key (a copy of the table alone does not give the PINs back, and 4 to 8
# digits are too few to hide behind a plain hash).
PIN_KEY_BYTES = 32


def keyed_pin_hash(key: bytes, pin: str) -> str:
    """The benefits table's key for `pin`: HMAC-SHA256 under the stack's PIN key, hex."""
    if len(key) < 16:
        raise ValueError("the PIN key must be at least 16 bytes")
    return hmac.new(key, pin.encode("ascii"), hashlib.sha256).hexdigest()
