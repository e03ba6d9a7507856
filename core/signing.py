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

One key per deployment (issue 14). The private key comes from one place every node shares,
chosen by settings (:meth:`SystemKeyring.from_settings`):

* ``GENPON_SIGNING_KEY_FILE`` — a PEM file provisioned to every node (a shared mount or a
  secret copied by the operator). It is re-read when it changes, so ``genpon keys rotate`` on
  one node (which rewrites the file atomically) is picked up by the others;
* ``GENPON_SIGNING_KEY`` — the PEM itself in the environment: read-only, rotation is refused;
* neither — the directory above under ``<data_dir>/keys`` (the embedded, one-node default).

The public keys and their history are in the database (table ``system_key``: key id, PEM,
created, retired); the row without ``retired_at`` is the deployment's current key. A node
whose private key is not that one cannot sign and says so (:func:`signing_state`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from genpon.core.clock import utcnow
from genpon.core.db import read_only
from sqlalchemy import Column, DateTime, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from genpon_verify.canonical import signed_bytes
from genpon_verify.keys import SIGNATURE_ALG, check_signature
from genpon_verify.keys import key_id_of as key_id_for
from genpon_verify.keys import load_public_key as load_public_pem

if TYPE_CHECKING:
    from genpon.core.settings import Settings

__all__ = [
    "SIGNATURE_ALG",
    "KeyProvisioningError",
    "SystemKey",
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


class KeyProvisioningError(RuntimeError):
    """The signing key cannot be provided or changed as asked (a message for the operator)."""


class SystemKey(SQLModel, table=True):
    """A public system key of the deployment; the row without ``retired_at`` is current."""

    __tablename__ = "system_key"
    key_id: str = Field(primary_key=True, max_length=32)
    public_pem: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    retired_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


def _load_private_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProvisioningError("system key is not Ed25519")
    return key


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class SystemKeyring:
    """The system's Ed25519 key: a key directory (embedded default), one shared PEM file, or a
    PEM given in the environment; with an ``engine``, the public keys recorded in the database
    are part of :meth:`public_keys`."""

    def __init__(
        self,
        key_dir: Path,
        *,
        key_file: Path | None = None,
        key_pem: str | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.key_dir = Path(key_dir)
        self.key_file = Path(key_file) if key_file else None
        self.key_pem = key_pem
        self.engine = engine
        self._private: Ed25519PrivateKey | None = None
        self._file_stamp: tuple[int, int] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> SystemKeyring:
        pem = settings.signing_key.get_secret_value() if settings.signing_key else None
        return cls(settings.key_dir, key_file=settings.signing_key_file, key_pem=pem, engine=engine)

    @property
    def source(self) -> str:
        """Where the private key comes from: ``env``, ``file`` or ``dir``."""
        return "env" if self.key_pem else "file" if self.key_file else "dir"

    # --- lifecycle ----------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether a private key is available here."""
        if self.key_pem:
            return True
        if self.key_file:
            return self.key_file.is_file()
        return (self.key_dir / "current").is_file()

    def ensure(self) -> str:
        """Create a first key when none exists; return the key id."""
        if self.source == "env":
            return self.key_id
        if self.key_file:
            if not self.key_file.is_file():
                self._write_file(Ed25519PrivateKey.generate())
            return self.key_id
        self.key_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.key_dir, 0o700)
        if not (self.key_dir / "current").exists():
            self._write_new()
        return self.key_id

    def rotate(self) -> tuple[str, str]:
        """Generate a new key and make it current; return ``(old_id, new_id)``."""
        old = self.key_id
        if self.source == "env":
            raise KeyProvisioningError(
                "署名鍵は環境変数 GENPON_SIGNING_KEY で与えられているため、ここでは更新できません。"
                " GENPON_SIGNING_KEY_FILE（全ノード共有のファイル）を使ってください。"
                " / The key comes from GENPON_SIGNING_KEY and cannot be rotated here: use a shared"
                " GENPON_SIGNING_KEY_FILE."
            )
        if self.key_file:
            return old, self._write_file(Ed25519PrivateKey.generate())
        new = self._write_new()
        return old, new

    def _write_file(self, key: Ed25519PrivateKey) -> str:
        """Replace the shared key file atomically (other nodes see the old or the new key)."""
        assert self.key_file is not None
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.key_file.with_name(f".{self.key_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_private_pem(key))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.key_file)
        self._private, self._file_stamp = key, None
        return key_id_for(key.public_key())

    def _write_new(self) -> str:
        key = Ed25519PrivateKey.generate()
        kid = key_id_for(key.public_key())
        pem = _private_pem(key)
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
        if self.source != "dir":
            return key_id_for(self._key().public_key())
        try:
            return (self.key_dir / "current").read_text().strip()
        except FileNotFoundError as exc:
            raise RuntimeError("system key missing: run `genpon init`") from exc

    def _key(self) -> Ed25519PrivateKey:
        if self.key_pem:
            if self._private is None:
                self._private = _load_private_pem(self.key_pem.encode())
            return self._private
        if self.key_file:
            try:
                st = self.key_file.stat()
            except FileNotFoundError as exc:
                raise RuntimeError(f"system key file missing: {self.key_file}") from exc
            stamp = (st.st_mtime_ns, st.st_size)
            if self._private is None or stamp != self._file_stamp:
                self._private = _load_private_pem(self.key_file.read_bytes())
                self._file_stamp = stamp
            return self._private
        kid = self.key_id
        if self._private is None or key_id_for(self._private.public_key()) != kid:
            self._private = _load_private_pem((self.key_dir / f"{kid}.key").read_bytes())
        return self._private

    def private_key(self) -> Ed25519PrivateKey:
        """The current private key (rotation uses it to endorse the next one)."""
        return self._key()

    def public_key(self) -> Ed25519PublicKey:
        return self._key().public_key()

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every public key ever used (current and rotated), by key id: the database's history,
        the key directory's ``*.pub`` files, and the current key."""
        out: dict[str, Ed25519PublicKey] = {}
        if self.engine is not None:
            for kid, pem in recorded_keys(self.engine).items():
                out[kid] = load_public_pem(pem)
        if self.key_dir.is_dir():
            for path in sorted(self.key_dir.glob("*.pub")):
                out[path.stem] = load_public_pem(path.read_bytes())
        if self.source != "dir" and self.ready():
            out.setdefault(self.key_id, self.public_key())
        return dict(sorted(out.items()))

    def public_keys_pem(self) -> dict[str, str]:
        return {kid: public_pem(k) for kid, k in self.public_keys().items()}

    # --- signing ------------------------------------------------------------------------
    def sign_bytes(self, data: bytes) -> str:
        """Base64 Ed25519 signature of ``data`` with the current key."""
        return base64.b64encode(self._key().sign(data)).decode("ascii")

    def sign_json(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with a ``signature`` field over its canonical JSON."""
        key = self._key()
        signed = {k: v for k, v in obj.items() if k != "signature"}
        signed["signature"] = {
            "alg": SIGNATURE_ALG,
            "key_id": key_id_for(key.public_key()),
            "value": base64.b64encode(key.sign(signed_bytes(obj))).decode("ascii"),
        }
        return signed


# --- the deployment's keys in the database ----------------------------------------------------


def recorded_keys(engine: Engine) -> dict[str, str]:
    """Public keys (PEM) recorded in the database, by key id; empty before migration 0010."""
    try:
        with Session(read_only(engine)) as s:
            keys = {r.key_id: r.public_pem for r in s.exec(select(SystemKey)).all()}
            s.rollback()
    except Exception:  # table missing (database not migrated yet): nothing recorded
        return {}
    return keys


def current_key_id(session: Session) -> str | None:
    row = session.exec(
        select(SystemKey)
        .where(col(SystemKey.retired_at).is_(None))
        .order_by(col(SystemKey.created_at).desc())
    ).first()
    return row.key_id if row else None


def record_key(session: Session, key_id: str, pem: str, *, current: bool = True) -> None:
    """Record a public key; when ``current``, every other key is retired (one transaction)."""
    now = utcnow()
    if current:
        for row in session.exec(
            select(SystemKey).where(col(SystemKey.retired_at).is_(None), SystemKey.key_id != key_id)
        ).all():
            row.retired_at = now
            session.add(row)
    existing = session.get(SystemKey, key_id)
    row = existing or SystemKey(key_id=key_id, public_pem=pem, created_at=now)
    if not current and row.retired_at is None:
        row.retired_at = now
    session.add(row)
    session.flush()


def signing_state(keyring: SystemKeyring, engine: Engine) -> tuple[bool, str | None]:
    """``(can_sign, reason)``: this node has the deployment's current private key."""
    if not keyring.ready():
        return False, "署名鍵がありません / no signing key here (GENPON_SIGNING_KEY_FILE)"
    try:
        kid = keyring.key_id
    except Exception as exc:
        return False, f"署名鍵を読めません / cannot read the signing key: {exc}"
    try:
        with Session(engine) as s:
            current = current_key_id(s)
            s.rollback()
    except Exception:
        return True, None  # not migrated yet: the key directory alone decides, as before
    if current is not None and current != kid:
        return False, (
            f"署名鍵 {kid} はこの配置の現在の鍵 {current} ではありません / the signing key {kid} is"
            f" not the deployment's current key {current}: provision the shared key"
            " (GENPON_SIGNING_KEY_FILE)"
        )
    return True, None


def provision(keyring: SystemKeyring, engine: Engine, *, join: bool = False) -> str:
    """``genpon init``: one key per deployment. On a database without a key, create (or take
    the configured) key and record it; on a database with a key, never create another: the
    configured private key must be that key (``--join`` says the node means to join)."""
    with Session(engine) as s:
        current = current_key_id(s)
        s.rollback()
    if current is None:
        if join:
            raise KeyProvisioningError(
                "このデータベースにはまだ署名鍵がありません。最初のノードでは --join なしで"
                " genpon init を実行してください。 / The database has no signing key yet: run"
                " `genpon init` without --join on the first node."
            )
        kid = keyring.ensure()
        with Session(engine) as s:
            for other, key in keyring.public_keys().items():  # older keys of this key directory
                if other != kid:
                    record_key(s, other, public_pem(key), current=False)
            record_key(s, kid, public_pem(keyring.public_key()))
            s.commit()
        return kid
    mine = keyring.key_id if keyring.ready() else None
    if mine == current:
        return current
    hint = (
        f"このデータベースには署名鍵 {current} があります。別の鍵は作りません。同じ秘密鍵を"
        " GENPON_SIGNING_KEY_FILE（または GENPON_SIGNING_KEY）で配布してから"
        " `genpon init --join` を実行してください。 / The database already has signing key"
        f" {current}; no second key is created. Provision the same private key"
        " (GENPON_SIGNING_KEY_FILE or GENPON_SIGNING_KEY) and run `genpon init --join`."
    )
    if mine is not None:
        hint = f"この鍵 {mine} は一致しません。 / This node's key {mine} does not match. " + hint
    raise KeyProvisioningError(hint)
