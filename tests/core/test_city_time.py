"""Every date a person sees or a package carries is the city's (GENPON_TIMEZONE, here
Asia/Tokyo) with an explicit offset, whatever time zone the server process runs in.

Each case runs with the process time zone set to UTC and to America/Los_Angeles, at 23:30 UTC:
already the next day in Tokyo (08:30 JST), still the same day in UTC, and the day before's
afternoon in Los Angeles."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from genpon.core import clock

TZ = "Asia/Tokyo"
NOW = datetime(2026, 7, 14, 23, 30, tzinfo=UTC)  # 2026-07-15 08:30 in Tokyo
TOKYO_DAY = date(2026, 7, 15)


@pytest.fixture(params=["UTC", "America/Los_Angeles"])
def process_tz(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's time zone (TZ + tzset), and the clock stopped at 23:30 UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)
    try:
        yield request.param
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_clock_helpers_are_the_citys(process_tz: str) -> None:
    assert datetime.fromtimestamp(NOW.timestamp()).date() != TOKYO_DAY  # the process disagrees
    assert clock.today(TZ) == TOKYO_DAY
    assert clock.local_iso(NOW, TZ) == "2026-07-15T08:30:00+09:00"
    assert clock.local_iso(NOW.replace(tzinfo=None), TZ) == "2026-07-15T08:30:00+09:00"  # naive=UTC
    assert clock.local_text(NOW, TZ) == "2026-07-15 08:30 +09:00"
    assert clock.mtime_date(NOW.timestamp(), TZ) == TOKYO_DAY


def test_approval_form_defaults_to_the_citys_today(process_tz: str) -> None:
    from genpon.api.web.records_views import approval_form_default

    assert approval_form_default(TZ) == "2026-07-15"


def test_an_imported_files_document_date_is_its_mtime_in_the_city(process_tz: str) -> None:
    from genpon.migrate.deposit import DepositPhase
    from genpon.migrate.job import _mtime

    ns = int(NOW.timestamp() * 1e9)
    phase = SimpleNamespace(settings=SimpleNamespace(timezone=TZ))
    entry = SimpleNamespace(mtime_ns=ns, mtime=_mtime(ns))
    assert DepositPhase._doc_date(phase, entry) == TOKYO_DAY  # type: ignore[arg-type]
    entry = SimpleNamespace(mtime_ns=None, mtime=NOW.replace(tzinfo=None))  # as SQLite gives it
    assert DepositPhase._doc_date(phase, entry) == TOKYO_DAY  # type: ignore[arg-type]


def test_import_report_times_carry_the_citys_offset(process_tz: str) -> None:
    import genpon.api.tables  # noqa: F401  (every table registered)
    from genpon.migrate import report
    from genpon.migrate.models import ImportEntry, ImportRun
    from sqlmodel import Session, SQLModel, create_engine

    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as s:
        run = ImportRun(
            source_root="/share",
            source_root_raw=b"/share",
            organization_id=1,
            folder_kind="team",
            folder_name="取込",
            original_rule="oldest",
            started_by="suzuki",
            started_at=NOW,
            finished_at=NOW,
            status="completed",
            summary={"files_seen": 1},
        )
        s.add(run)
        s.flush()
        s.add(
            ImportEntry(
                run_id=run.id,
                seq=1,
                path_key="a.txt",
                rel_path="a.txt",
                rel_path_raw=b"a.txt",
                name_encoding="utf-8",
                entry_type="file",
                state="skipped",
                reason="empty_file",
                mtime=NOW,
            )
        )
        s.commit()
        html = report.render_html(s, run.id or 0, timezone=TZ)
        assert "2026-07-15 08:30 +09:00" in html and "23:30" not in html
        csv_text = "".join(report.iter_entries_csv(s, run.id or 0, timezone=TZ))
        assert "2026-07-15T08:30:00+09:00" in csv_text
    engine.dispose()


def test_bagit_metadata_and_bagging_date_are_the_citys(process_tz: str, tmp_path: Path) -> None:
    import io

    from genpon.retention.bagit_package import TransferItem, build_transfer_bag

    content = "移管する文書".encode()
    item = TransferItem(
        document_id=7,
        filename="文書.txt",
        metadata={
            "approved_at": NOW,
            "closed_at": NOW.replace(tzinfo=None),  # as SQLite gives it back: UTC
            "doc_date": date(2020, 5, 1),
        },
        open_content=lambda: io.BytesIO(content),
    )
    bag = build_transfer_bag(tmp_path / "bag", [item], [], {"Source-Organization": "市"}, now=NOW)
    meta = json.loads((bag / "data" / "7" / "metadata.json").read_text("utf-8"))
    assert meta["approved_at"] == "2026-07-15T08:30:00+09:00"
    assert meta["closed_at"] == "2026-07-15T08:30:00+09:00"
    assert meta["doc_date"] == "2020-05-01"
    info = (bag / "bag-info.txt").read_text("utf-8")
    assert "Bagging-Date: 2026-07-15\n" in info


def test_web_timestamps_carry_the_offset(process_tz: str) -> None:
    from genpon.api.web.render import datetime_markup

    html = str(datetime_markup(NOW, TZ, "ja"))
    assert html == (
        '<time datetime="2026-07-15T08:30:00+09:00" title="Asia/Tokyo（UTC+09:00）">'
        "2026年7月15日 08:30</time>"
    )
    assert datetime_markup(None, TZ, "ja") == ""
