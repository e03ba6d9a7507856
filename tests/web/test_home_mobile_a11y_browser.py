"""In headless Chromium: the start page, search on a phone (results before filters) and an
axe-core accessibility check (0 serious or critical violations) on every screen."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from genpon.records.models import User
from sqlmodel import Session, select

from tests.web.conftest import Live, shot

pytestmark = pytest.mark.browser

TIMEOUT = 15_000
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def open_as(browser: Any, live: Live, login: str | None, **context: Any) -> Any:
    """A signed-in page (``login`` None: signed out). The CSP is bypassed so that axe can be
    injected; the application's own pages never need that."""
    options = {"locale": "ja-JP", "viewport": {"width": 1280, "height": 900}, "bypass_csp": True}
    options.update(context)
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(TIMEOUT)
    page = ctx.new_page()
    page.goto(f"{live.url}/login")
    if login:
        page.get_by_label("利用者ID").fill(login)
        page.get_by_label("パスワード").fill("genpon-demo")
        page.get_by_role("button", name="サインイン").first.click()
        page.wait_for_url(f"{live.url}/")
    return page


def seed(live: Live) -> dict[str, Any]:
    """A case with documents (one due for disposal, held or in a batch), indexed for search."""
    from genpon.records import cases, documents
    from genpon.records.access import SYSTEM_ACTOR, actor_for_user
    from genpon.records.documents import ApprovalIn, DepositIn
    from genpon.retention import batches, holding
    from genpon.search.indexer import drain

    ctx = live.ctx
    tz = ctx.settings.timezone
    out: dict[str, Any] = {}
    with Session(ctx.engine) as s:
        case, folder = cases.create_case(
            s,
            SYSTEM_ACTOR,
            title="令和元年度 出張命令",
            organization_code="SOUMU-ZAISEI",
            class_code="A0202",
            case_id_format=ctx.settings.case_id_format,
            timezone=tz,
            opened_on=date(2019, 5, 10),
        )
        ids = []
        for i, text in enumerate(["出張命令書 東京 舗装の視察", "復命書 舗装の工法", "旅費の精算"]):
            stager = ctx.store.stager(max_bytes=1 << 20)
            stager.write(text.encode())
            outcome = documents.deposit(
                s,
                ctx.store,
                SYSTEM_ACTOR,
                stager.finish(),
                DepositIn(
                    filename=f"命令{i}.txt",
                    case_id=case.case_id,
                    approval=ApprovalIn(approved_on=date(2019, 5, 12 + i), approvers=["課長"]),
                ),
                allowed_types=ctx.settings.allowed_types,
                timezone=tz,
            )
            ids.append(outcome.document.id or 0)
        cases.close_case(
            s, SYSTEM_ACTOR, case.case_id, timezone=tz, closed_at=datetime(2019, 12, 20, tzinfo=UTC)
        )
        suzuki = s.exec(select(User).where(User.login == "suzuki")).one()
        officer = actor_for_user(s, suzuki)
        holding.place_hold(
            s, officer, scope="document", ref=ids[2], hold_type="audit", reason="監査のため"
        )
        batch = batches.create_batch(
            s, officer, action="destroy", timezone=tz, document_ids=[ids[0]], title="廃棄伺い"
        )
        s.commit()
        out.update(case_id=case.case_id, folder_id=folder.id, doc_ids=ids, batch_id=batch.id)
    drain(ctx)
    return out


@pytest.fixture(scope="module")
def seeded(live: Live) -> dict[str, Any]:
    return seed(live)


def test_start_page_and_saving_a_search(browser: Any, live: Live, seeded: dict[str, Any]) -> None:
    page = open_as(browser, live, "tanaka")
    page.goto(f"{live.url}/documents/{seeded['doc_ids'][1]}")
    with page.expect_download():  # a read, in the audit log: the start page lists it
        page.get_by_test_id("download").click()
    nav = page.get_by_role("navigation", name="メニュー").get_by_role("link")
    assert nav.first.inner_text() == "ホーム"
    nav.first.click()
    page.wait_for_url(re.compile(r"/home$"))
    recent = page.get_by_test_id("recent-doc")
    assert "命令1" in recent.first.inner_text() and "閲覧" in recent.first.inner_text()
    assert "令和元年度 出張命令" in page.get_by_test_id("home-cases").inner_text()
    page.get_by_role("link", name="検索", exact=True).click()
    page.get_by_test_id("q").fill("舗装")
    page.get_by_test_id("q").press("Enter")
    page.get_by_test_id("hit").first.wait_for()
    form = page.get_by_test_id("save-search")
    form.get_by_label("検索の名前").fill("舗装の記録")
    form.get_by_role("button", name="この検索を保存").click()
    page.wait_for_url(re.compile(r"/home\?msg=saved"))
    saved = page.get_by_test_id("saved-search").filter(has_text="舗装の記録")
    shot(page, "20-home")
    saved.get_by_role("link").click()
    page.get_by_test_id("hit").first.wait_for()
    assert page.get_by_test_id("q").input_value() == "舗装"
    page.context.close()

    officer = open_as(browser, live, "sato")
    officer.goto(f"{live.url}/home")
    waits = officer.get_by_test_id("home-waits")
    assert "廃棄伺い" in waits.inner_text()  # suzuki's batch waits for sato's approval
    shot(officer, "21-home-officer")
    officer.context.close()


def test_search_on_a_phone_shows_results_before_filters(
    browser: Any, live: Live, seeded: dict[str, Any]
) -> None:
    page = open_as(
        browser,
        live,
        "suzuki",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page.goto(f"{live.url}/?q=舗装")
    first = page.get_by_test_id("hit").first
    first.wait_for()
    box = first.bounding_box()
    assert box is not None and box["y"] + 60 < 844, box  # the first result starts on screen
    facets = page.get_by_test_id("facets")
    assert facets.get_attribute("open") is None  # folded: one line, not a screenful
    assert not page.get_by_label("案件ID").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    shot(page, "22-search-phone")
    facets.locator("summary").click()
    assert page.get_by_label("案件ID").is_visible()
    shot(page, "23-search-phone-filters")
    page.context.close()

    wide = open_as(browser, live, "suzuki")
    wide.goto(f"{live.url}/?q=舗装")
    wide.get_by_test_id("hit").first.wait_for()
    assert wide.get_by_test_id("facets").get_attribute("open") is not None  # beside the results
    wide.context.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_every_screen_has_no_serious_accessibility_violation(
    browser: Any, live: Live, seeded: dict[str, Any]
) -> None:
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{AXE} is missing in CI (run ./scripts/setup)")
        pytest.skip("axe-core not installed (run ./scripts/setup)")
    screens: dict[str | None, list[str]] = {
        None: ["/login"],
        "tanaka": [
            "/",
            "/?q=舗装",
            "/home",
            "/cases",
            f"/cases/{seeded['case_id']}",
            "/folders",
            f"/folders/{seeded['folder_id']}",
            f"/documents/{seeded['doc_ids'][0]}",
            "/folders/999999",
        ],
        "suzuki": [
            "/home",
            f"/folders/{seeded['folder_id']}",
            "/records/due",
            "/records/batches",
            f"/records/batches/{seeded['batch_id']}",
            "/records/holds",
            "/records/register",
            "/records/text-failures",
        ],
        "yamada": ["/audit/log", "/audit/checkpoints", "/audit/fixity", "/audit/verify"],
        "admin": [
            "/admin",
            "/admin/users",
            "/admin/users/tanaka",
            "/admin/keys",
            "/admin/masters",
            "/admin/masters/organizations",
            "/admin/system-key",
        ],
    }
    # the check itself sees problems: a nameless button and grey-on-grey text are reported
    probe = open_as(browser, live, None)
    probe.evaluate(
        """() => document.querySelector("main").insertAdjacentHTML("beforeend",
          '<button id="nameless"></button><p style="color:#bbb;background:#ccc">薄い文字</p>')"""
    )
    assert {"button-name", "color-contrast"} <= {v["id"] for v in axe_violations(probe)}
    probe.context.close()
    found: dict[str, list[dict[str, Any]]] = {}
    for login, paths in screens.items():
        page = open_as(browser, live, login)
        for path in paths:
            page.goto(f"{live.url}{path}")
            bad = axe_violations(page)
            if bad:
                found[f"{login}:{path}"] = bad
            name = re.sub(r"[^A-Za-z0-9]+", "-", f"{login}{path}").strip("-")
            shot(page, f"axe-{name}")
        page.context.close()
    assert found == {}, found
