"""Phase 1 of an import, ``scan``: walk the tree (:mod:`.walker`) and record one entry per path;
problems (unreadable, special files, names too long …) are recorded as skipped entries."""

from __future__ import annotations

from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.migrate import walker
from genpon.migrate.job import (
    JobState,
    _insert,
    _Meter,
    _mtime,
    _path_key,
)
from genpon.migrate.models import ImportEntry


class ScanPhase(JobState):
    def scan(self) -> None:
        meter = _Meter(self.progress, "走査", 0)
        batch: list[dict[str, Any]] = []
        seq = 0
        try:
            for item in walker.walk(self.root):
                seq += 1
                batch.append(self._entry_row(item, seq))
                meter.tick(item.size or 0)
                if len(batch) >= 500:
                    self._insert_entries(batch)
                    batch = []
            if batch:
                self._insert_entries(batch)
        finally:
            meter.close()

    def _entry_row(self, item: walker.WalkItem, seq: int) -> dict[str, Any]:
        display, enc = walker.decode_path(item.rel)
        now = utcnow()
        return {
            "run_id": self.run_id,
            "seq": seq,
            "path_key": _path_key(item.rel),
            "rel_path_raw": item.rel,
            "rel_path": display,
            "name_encoding": enc,
            "entry_type": item.entry_type,
            "state": "skipped" if item.reason else "seen",
            "reason": item.reason,
            "detail": item.detail,
            "size": item.size,
            "mtime": _mtime(item.mtime_ns),
            "mtime_ns": item.mtime_ns,
            "owner": walker.owner_name(item.uid) if item.uid is not None else None,
            "uid": item.uid,
            "updated_at": now,
        }

    def _insert_entries(self, rows: list[dict[str, Any]]) -> None:
        with session_scope(self.state) as s:
            ins = _insert(s)
            s.execute(  # one executemany (a cached statement, not a 500-row VALUES to compile)
                ins(ImportEntry.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
                    index_elements=["run_id", "path_key"]
                ),
                rows,
            )
