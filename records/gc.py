"""Garbage collection of unreferenced blobs (genpon gc).

A deposit writes its blob before its rows commit; a crash in between leaves a blob no row
points to. Such blobs, and leftover staging files, are removed once older than the grace period
(so a deposit still in flight is never touched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from genpon.core.clock import as_utc, utcnow
from genpon.records.models import Blob
from genpon.storage.base import BlobStore
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select


@dataclass
class GcReport:
    blobs_seen: int = 0
    orphans: list[str] = field(default_factory=list)
    young_orphans: int = 0
    staging_removed: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "blobs_seen": self.blobs_seen,
            "orphans_removed": 0 if self.dry_run else len(self.orphans),
            "orphans": self.orphans[:1000],
            "young_orphans_kept": self.young_orphans,
            "staging_removed": self.staging_removed,
            "dry_run": self.dry_run,
        }


def collect(
    engine: Engine, store: BlobStore, *, grace_seconds: int, dry_run: bool = False
) -> GcReport:
    report = GcReport(dry_run=dry_run)
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    it = iter(store.iter_blobs())
    while batch := list(islice(it, 1000)):
        report.blobs_seen += len(batch)
        with Session(engine) as s:
            known = set(
                s.exec(
                    select(Blob.sha256).where(
                        col(Blob.sha256).in_([h for h, _ in batch]), Blob.state == "stored"
                    )
                ).all()
            )
        for sha, stored_at in batch:
            if sha in known:
                continue
            if as_utc(stored_at) > cutoff:
                report.young_orphans += 1
                continue
            report.orphans.append(sha)
            if not dry_run:
                # Re-check under the database's view right before deleting: a deposit may have
                # committed a row for this content since the batch was read.
                with Session(engine) as s:
                    if s.get(Blob, sha) is not None:
                        report.orphans.pop()
                        continue
                store.delete(sha)
    for path, mtime in store.iter_staging():
        if as_utc(mtime) <= cutoff:
            report.staging_removed += 1
            if not dry_run:
                path.unlink(missing_ok=True)
    return report
