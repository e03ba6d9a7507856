"""Two imports of the same source into the same target never run at once; the lock is the
kernel's, so a killed import leaves nothing that blocks its resumption."""

from __future__ import annotations

import os

import pytest
from genpon.core.errors import Conflict
from genpon.migrate.models import ImportRun
from genpon.migrate.service import ImportOptions, _source_lock, run_import
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import Organization
from sqlalchemy import func
from sqlmodel import Session, select


def test_a_second_import_of_the_same_source_is_refused(ctx, demo, tmp_path):
    root = tmp_path / "share"
    (root / "課").mkdir(parents=True)
    (root / "課" / "a.txt").write_bytes("予算の資料".encode())
    opts = ImportOptions(
        root=root, org_code="SOUMU-ZAISEI", kind="team", folder_name="取込", with_text=False
    )
    with Session(ctx.engine) as s:
        org_id = s.exec(select(Organization.id).where(Organization.code == "SOUMU-ZAISEI")).one()
    with _source_lock(ctx.settings, os.fsencode(root), org_id, "team", "取込"):
        with pytest.raises(Conflict) as err:
            run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts)
        assert err.value.code == "import_in_progress"
        with Session(ctx.engine) as s:
            assert s.exec(select(func.count()).select_from(ImportRun)).one() == 0
        # another target folder is another import
        other = ImportOptions(
            root=root, org_code="SOUMU-ZAISEI", kind="team", folder_name="別", with_text=False
        )
        assert (
            run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, other).summary["imported"]
            == 1
        )
        # a dry run changes nothing, so it is never refused
        dry = ImportOptions(**{**opts.__dict__, "dry_run": True})
        assert run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, dry).dry_run
    res = run_import(ctx.engine, ctx.store, ctx.settings, SYSTEM_ACTOR, opts)
    assert res.summary["imported"] == 1
