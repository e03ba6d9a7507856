"""One settings object, read from ``GENPON_*`` environment variables (and ``.env``).

Every setting is listed in README.md ("Settings"). Backends are chosen here; nothing else reads
the environment.
"""

from __future__ import annotations

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

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment == "production" and "change-me" in self.secret_key.get_secret_value():
            raise ValueError("GENPON_SECRET_KEY must be set to a real secret in production")
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

    @property
    def preview_dir(self) -> Path:
        return self.preview_dir_override or self.data_dir / "derived" / "previews"


@lru_cache
def get_settings() -> Settings:
    return Settings()
