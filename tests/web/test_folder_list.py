"""The list of folders scales: one kind paged and filtered by organization, an overview else."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from genpon.records import folders
from genpon.records.access import SYSTEM_ACTOR
from sqlmodel import Session

from tests.web.helpers import HTML, sign_in


def _names(html: str, kind: str) -> list[str]:
    block = re.search(rf'<ul class="folders" data-kind="{kind}">(.*?)</ul>', html, re.S)
    assert block is not None
    return re.findall(r'<a href="/folders/\d+">([^<]+)</a>', block.group(1))


def test_team_folders_are_paged_and_filtered(ctx: Any, demo: Any, client: TestClient) -> None:
    with Session(ctx.engine) as s:
        for i in range(45):
            folders.create_folder(
                s, SYSTEM_ACTOR, name=f"班{i:03d}", kind="team", organization_code="SOUMU-ZAISEI"
            )
        s.commit()
    sign_in(client, "admin")

    class Admin:  # the signed-in browser's GETs
        @staticmethod
        def get(url: str, params: dict[str, Any] | None = None) -> Any:
            return client.get(url, params=params, headers=HTML)

    admin = Admin()
    overview = admin.get("/folders")
    assert overview.status_code == 200
    assert len(_names(overview.text, "team")) == 20  # the first 20 of each kind
    assert 'data-testid="folder-more-team"' in overview.text
    first = admin.get("/folders", params={"kind": "team", "org": "SOUMU-ZAISEI", "per": 20})
    second = admin.get(
        "/folders", params={"kind": "team", "org": "SOUMU-ZAISEI", "per": 20, "page": 2}
    )
    a, b = _names(first.text, "team"), _names(second.text, "team")
    assert len(a) == len(b) == 20 and not set(a) & set(b)
    assert 'rel="next"' in first.text and 'rel="prev"' in second.text
    assert "<ul" in first.text and 'data-kind="shared"' not in first.text  # one kind only
    other = admin.get("/folders", params={"kind": "team", "org": "KENSETSU-DOURO"})
    assert not any(name.startswith("班") for name in _names(other.text, "team"))
    assert admin.get("/folders", params={"org": "NO-SUCH-ORG", "kind": "team"}).status_code == 404
