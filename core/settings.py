"""One settings object, read from ``GENPON_*`` environment variables (and ``.env``).

Every setting is listed in README.md ("Settings"). Backends are chosen here; nothing else reads
the environment.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ALLOWED_TYPES = (
    "application/pdf",
    "text/*",
    "image/*",
    "application/zip",
    "application/octet-stream",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*",
    "application/vnd.ms-office",
    "application/json",
    "application/x-ndjson",
    "application/xml",
    "application/x-empty",
    "application/csv",
    "message/rfc822",
)


SECRET_MIN_BYTES = 32
_CHAR_CLASSES = (
    (frozenset("0123456789"), 10),
    (frozenset("abcdefghijklmnopqrstuvwxyz"), 26),
    (frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 26),
)


def secret_entropy_bits(secret: str) -> float:
    """An upper estimate of a secret's entropy at face value: its length times the bits of the
    character classes it uses (digits, lower, upper, anything else counted as 32 symbols)."""
    chars = set(secret)
    alphabet = sum(size for members, size in _CHAR_CLASSES if chars & members)
    if any(not any(c in members for members, _ in _CHAR_CLASSES) for c in chars):
        alphabet += 32
    return len(secret) * math.log2(alphabet) if alphabet > 1 else 0.0


def strong_secret(secret: str) -> bool:
    """At least 32 bytes long, 256 bits at face value and not repetitive (10+ distinct
    characters): ``secrets.token_urlsafe(32)`` and ``secrets.token_hex(32)`` pass, a password,
    a repeated word or a 16-byte key do not."""
    return (
        len(secret.encode()) >= SECRET_MIN_BYTES
        and secret_entropy_bits(secret) >= 8 * SECRET_MIN_BYTES
        and len(set(secret)) >= 10
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GENPON_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/genpon.db"
    )
    secret_key: SecretStr = SecretStr("dev-insecure-secret-change-me")
    cli_user: str | None = None  # the Genpon login CLI commands act as when --as is not given

    # time and identifiers
    timezone: str = "Asia/Tokyo"
    case_id_format: str = "{fy}-{org}-{seq:05d}"

    # storage
    storage_backend: Literal["local", "s3"] = "local"
    blob_dir_override: Path | None = Field(default=None, alias="GENPON_BLOB_DIR")
    s3_endpoint_url: str | None = None
    s3_bucket: str = "genpon"
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_object_lock: bool = False

    # deposit
    max_upload_bytes: int = 4 * 1024**3
    allowed_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    gc_grace_seconds: int = 24 * 3600

    # search
    search_backend: Literal["tantivy", "whoosh", "postgres"] = "tantivy"
    index_dir_override: Path | None = Field(default=None, alias="GENPON_INDEX_DIR")

    index_autostart: bool = Field(
        default=True, description="run the index worker inside the server"
    )
    extract_timeout_s: int = 60
    extract_memory_mb: int = 1024
    extract_max_bytes: int = 200 * 1024 * 1024

    # audit and integrity
    checkpoint_every: int = 1000
    fixity_workers: int = 2

    # retention
    transfer_remove_content: bool = True
    certificate_class_code: str = "A0101"

    # legacy import
    import_original_rule: str = "official,case,oldest,shortest"

    # server
    host: str = "127.0.0.1"
    port: int = 8000
    cookie_secure: bool = False

    # processes and deployment (issue 14): workers, leases, node heartbeats, the shared key
    worker_in_server: bool | None = Field(
        default=None,
        description="run the background worker inside `genpon serve`; default: on SQLite only",
    )
    index_lease_seconds: int = Field(
        default=30,
        ge=1,
        description="an outbox claim's lease; renewed while the batch runs, so it bounds only"
        " how long a killed worker's rows wait",
    )
    worker_poll_seconds: float = 1.0
    node_heartbeat_seconds: float = 10.0
    node_stale_seconds: float = 45.0
    outbox_max_age_seconds: int = 600
    signing_key_file: Path | None = Field(
        default=None, description="PEM private key shared by every node (rotation rewrites it)"
    )
    signing_key: SecretStr | None = Field(
        default=None, description="PEM private key given in the environment (read-only)"
    )

    @property
    def runs_worker_in_server(self) -> bool:
        """Whether `genpon serve` runs the background loops itself (the embedded default)."""
        if not self.index_autostart:
            return False
        if self.worker_in_server is not None:
            return self.worker_in_server
        return self.db_url.startswith("sqlite")

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        if self.environment in ("development", "test"):
            return self
        secret = self.secret_key.get_secret_value()
        if "change-me" in secret:
            raise ValueError("GENPON_SECRET_KEY must be set to a real secret in production")
        if not strong_secret(secret):
            raise ValueError(
                "GENPON_SECRET_KEY is too weak for production: it needs at least 32 random bytes, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'genpon.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.blob_dir_override or self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def index_dir(self) -> Path:
        return self.index_dir_override or self.data_dir / "index"

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"

    # document viewer: page images rendered on demand into a derived, rebuildable cache
    preview_enabled: bool = True
    preview_dir_override: Path | None = Field(default=None, alias="GENPON_PREVIEW_DIR")
    preview_widths: tuple[int, ...] = (160, 800, 1200, 1600)  # px; a request is rounded up
    preview_timeout_s: int = 30  # per page render (pdftoppm or Pillow child)
    preview_memory_mb: int = 1024  # address-space limit of the render child
    preview_max_pixels: int = 60_000_000  # Pillow's MAX_IMAGE_PIXELS (decompression bombs)
    preview_max_bytes: int = 500 * 1024 * 1024  # larger contents get no page images
    preview_concurrency: int = 2  # renders at once per process
    preview_max_text_chars: int = 300_000  # text shown for text kinds

    # OCR of scanned PDF pages and images (search.ocr), in the extraction child
    ocr_enabled: bool | None = Field(
        default=None, description="None: on when the tesseract program is installed"
    )
    ocr_languages: str = "jpn"  # Tesseract models for horizontal text; jpn_vert is tried too
    ocr_dpi: int = 300  # PDF pages are rendered at this resolution
    ocr_page_timeout_s: int = 60  # rendering and every Tesseract call of one page together
    ocr_max_pages: int = 200  # pages OCR'd per file; the rest are recorded as skipped

    @property
    def preview_dir(self) -> Path:
        return self.preview_dir_override or self.data_dir / "derived" / "previews"

    # read scaling: searches and read-only pages may go to a PostgreSQL streaming replica
    database_read_url: str | None = Field(
        default=None, description="SQLAlchemy URL of a read replica of database_url (PostgreSQL)"
    )
    read_wait_ms: int = 500  # how long a read waits for the replica to catch up, then primary


@lru_cache
def get_settings() -> Settings:
    return Settings()
