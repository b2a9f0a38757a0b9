"""Encryption at rest for the store's sensitive columns: SM4-GCM with a key id.

What is sealed: the application request (names, ID numbers, phones, addresses, bank
cards and every attachment) and the departments' raw results. Everything the store
queries on (application numbers, delivery ids, states) stays in the clear.

A sealed value is ``sm4gcm:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``. The key id and
the row it belongs to are authenticated data, so a sealed value copied into another row
does not open. Keys rotate by configuring the new key next to the old ones: new values
are sealed with the active key, old ones still open with theirs, and
``gateway store reseal`` rewrites old rows under the active key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PREFIX = "sm4gcm:"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class SealingError(RuntimeError):
    """A sealed value cannot be opened (unknown key id, wrong key, or tampered)."""


def parse_store_keys(text: str | None) -> dict[str, bytes]:
    """``kid1:<32 hex>,kid2:<32 hex>`` (from the environment) → {key id: 16-byte key}."""
    keys: dict[str, bytes] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        kid, sep, hexkey = part.strip().partition(":")
        if not sep or not _KEY_ID.match(kid):
            raise ValueError("store keys: each entry is <key id>:<32 hex digits>; key ids are 1-32 of A-Za-z0-9_.-")
        try:
            key = bytes.fromhex(hexkey)
        except ValueError as exc:
            raise ValueError(f"store key {kid}: not hexadecimal") from exc
        if len(key) != 16:
            raise ValueError(f"store key {kid}: SM4 keys are 16 bytes (32 hex digits)")
        keys[kid] = key
    return keys


@dataclass(frozen=True)
class Sealer:
    """Seals and opens text. Without keys it writes plain text (and refuses to open a
    sealed value, rather than hand ciphertext on as if it were data)."""

    keys: Mapping[str, bytes] = field(default_factory=dict)
    active: str | None = None

    def __post_init__(self) -> None:
        if self.active is not None and self.active not in self.keys:
            raise ValueError(f"active store key id {self.active!r} is not among the configured keys")

    @property
    def enabled(self) -> bool:
        return self.active is not None

    def seal(self, text: str, context: str) -> str:
        if self.active is None:
            return text
        key = self.keys[self.active]
        nonce = os.urandom(12)
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(f"{self.active}\x1f{context}".encode())
        sealed = enc.update(text.encode("utf-8")) + enc.finalize() + enc.tag
        return f"{PREFIX}{self.active}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, value: str, context: str) -> str:
        if not value.startswith(PREFIX):
            return value  # written before encryption was switched on
        kid, _, payload = value[len(PREFIX):].partition(":")
        key = self.keys.get(kid)
        if key is None:
            raise SealingError(f"a record is sealed with store key id {kid!r}, which is not configured")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SealingError("a sealed record is not valid base64") from exc
        nonce, body, tag = raw[:12], raw[12:-16], raw[-16:]
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(f"{kid}\x1f{context}".encode())
        try:
            return (dec.update(body) + dec.finalize()).decode("utf-8")
        except InvalidTag as exc:
            raise SealingError(f"a record sealed with key id {kid!r} failed authentication") from exc

    def is_current(self, value: str) -> bool:
        """Sealed with the active key (or plain while encryption is off)."""
        if self.active is None:
            return not value.startswith(PREFIX)
        return value.startswith(f"{PREFIX}{self.active}:")


def sealer_from_environment(env: Mapping[str, str]) -> Sealer:
    """GATEWAY_STORE_KEYS and, optionally, GATEWAY_STORE_KEY_ID (default: the last key listed)."""
    keys = parse_store_keys(env.get("GATEWAY_STORE_KEYS"))
    if not keys:
        return Sealer()
    active = env.get("GATEWAY_STORE_KEY_ID") or list(keys)[-1]
    return Sealer(keys, active)
