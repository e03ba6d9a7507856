"""The system signing key (システム署名鍵): Ed25519, kept outside the database.

Layout under ``settings.key_dir`` (directory mode 0700)::

    current            the key id in use (one line)
    <key_id>.key       PKCS#8 PEM private key, mode 0600
    <key_id>.pub       SubjectPublicKeyInfo PEM public key (exportable, kept after rotation)

The key id (the first 16 hex digits of the SHA-256 of the raw public key), the canonical JSON a
signature covers (the object without its ``signature`` field) and the signature check are
:mod:`genpon_verify.keys` and :mod:`genpon_verify.canonical`: one copy of each rule, shared with
the offline verifier. Rotation keeps every old public key so old signatures still verify;
recording the rotation in the audit log is the caller's job (it happens in a transaction).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from genpon_verify.canonical import signed_bytes
from genpon_verify.keys import SIGNATURE_ALG, check_signature
from genpon_verify.keys import key_id_of as key_id_for
from genpon_verify.keys import load_public_key as load_public_pem

__all__ = [
    "SIGNATURE_ALG",
    "SystemKeyring",
    "key_id_for",
    "load_public_pem",
    "public_pem",
    "verify_json",
]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def verify_json(obj: Mapping[str, Any], public_keys: Mapping[str, Ed25519PublicKey]) -> bool:
    """True when ``obj["signature"]`` is a valid Ed25519 signature by one of ``public_keys``."""
    return check_signature(obj, public_keys) is None


class SystemKeyring:
    """The system's Ed25519 key pair on disk, created by ``genpon init``."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = Path(key_dir)
        self._private: Ed25519PrivateKey | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def ensure(self) -> str:
        """Create the key directory and a first key when none exists; return the key id."""
        self.key_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.key_dir, 0o700)
        if not (self.key_dir / "current").exists():
            self._write_new()
        return self.key_id

    def rotate(self) -> tuple[str, str]:
        """Generate a new key and make it current; return ``(old_id, new_id)``."""
        old = self.key_id
        new = self._write_new()
        return old, new

    def _write_new(self) -> str:
        key = Ed25519PrivateKey.generate()
        kid = key_id_for(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.key_dir / f"{kid}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        (self.key_dir / f"{kid}.pub").write_text(public_pem(key.public_key()))
        tmp = self.key_dir / "current.tmp"
        tmp.write_text(kid + "\n")
        os.replace(tmp, self.key_dir / "current")
        self._private = key
        return kid

    # --- reading ------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        try:
            return (self.key_dir / "current").read_text().strip()
        except FileNotFoundError as exc:
            raise RuntimeError("system key missing: run `genpon init`") from exc

    def _key(self) -> Ed25519PrivateKey:
        kid = self.key_id
        if self._private is None or key_id_for(self._private.public_key()) != kid:
            key = serialization.load_pem_private_key(
                (self.key_dir / f"{kid}.key").read_bytes(), password=None
            )
            if not isinstance(key, Ed25519PrivateKey):
                raise RuntimeError("system key is not Ed25519")
            self._private = key
        return self._private

    def public_key(self) -> Ed25519PublicKey:
        return self._key().public_key()

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every public key ever used (current and rotated), by key id."""
        out: dict[str, Ed25519PublicKey] = {}
        for path in sorted(self.key_dir.glob("*.pub")):
            out[path.stem] = load_public_pem(path.read_bytes())
        return out

    def public_keys_pem(self) -> dict[str, str]:
        return {kid: public_pem(k) for kid, k in self.public_keys().items()}

    # --- signing ------------------------------------------------------------------------
    def sign_bytes(self, data: bytes) -> str:
        """Base64 Ed25519 signature of ``data`` with the current key."""
        return base64.b64encode(self._key().sign(data)).decode("ascii")

    def sign_json(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with a ``signature`` field over its canonical JSON."""
        signed = {k: v for k, v in obj.items() if k != "signature"}
        signed["signature"] = {
            "alg": SIGNATURE_ALG,
            "key_id": self.key_id,
            "value": self.sign_bytes(signed_bytes(obj)),
        }
        return signed
