"""The records officer's disposal screens in headless Chromium: a document that is not due is
refused with its reason, and nothing is destroyed before a confirmation page that tells how
many documents, of which cases, under which holds, and offers to leave blocked ones out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from genpon.core.signing import SystemKeyring
from genpon.retention import batches, holding
from genpon.retention.models import DisposalCertificate
from sqlmodel import Session, select

from tests.retention.helpers import actor, doc, make_case
from tests.web.conftest import Live, shot
from tests.web.test_e2e_browser import sign_in

pytestmark = pytest.mark.browser

CLOSED_2015 = datetime(2015, 7, 15, 3, tzinfo=UTC)  # B0102, 5 years: due since 2021-04-01


def test_a_not_due_document_is_refused_with_its_reason(browser: Any, live: Live) -> None:
    _case, later = make_case(live.ctx, closed=datetime.now(UTC), docs=1, title="今年度完結の案件")
    page = sign_in(browser, live, "suzuki")
    page.goto(f"{live.url}/records/due?as_of=2099-04-01")  # looking ahead is allowed
    page.locator(f'input[name="document_id"][value="{later[0]}"]').check()
    page.get_by_test_id("batch-create").click()
    page.get_by_test_id("refused-message").wait_for()
    assert "伺いは作成していません" in page.get_by_test_id("refused-message").inner_text()
    item = page.get_by_test_id("refused-item")
    assert item.count() == 1
    assert "保存期間が満了していません（満了日 " in item.inner_text()
    assert "文書0" in item.inner_text()  # named by its title
    assert "items_not_disposable" in page.content()
    shot(page, "20-officer-batch-refused")
    with Session(live.ctx.engine) as s:
        assert batches.list_batches(s, actor(live.ctx, "suzuki")) == []
    page.context.close()


def test_destroy_runs_only_from_the_confirmation_page(browser: Any, live: Live) -> None:
    SystemKeyring(live.ctx.settings.key_dir).ensure()
    case_id, ids = make_case(live.ctx, closed=CLOSED_2015, docs=2, title="平成27年度 物品購入")
    suzuki, sato = actor(live.ctx, "suzuki"), actor(live.ctx, "sato")
    with Session(live.ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(
            s, suzuki, action="destroy", timezone="Asia/Tokyo", document_ids=ids
        )
        s.commit()
    with Session(live.ctx.engine) as s:
        batches.decide(s, sato, b.id, approve=True, timezone="Asia/Tokyo")
        s.commit()
    with Session(live.ctx.engine) as s:  # a disclosure request arrives after the approval
        holding.place_hold(
            s, suzuki, scope="document", ref=ids[1], hold_type="disclosure", reason="開示請求第7号"
        )
        s.commit()

    page = sign_in(browser, live, "suzuki")
    page.goto(f"{live.url}/records/batches/{b.id}")
    page.get_by_test_id("execute").click()
    page.wait_for_url(re.compile(rf"/records/batches/{b.id}/execute/confirm$"))
    assert page.get_by_test_id("confirm-count").inner_text() == "2件"
    assert page.get_by_test_id("confirm-ready").inner_text().startswith("1件")
    assert case_id in page.get_by_test_id("confirm-case-list").inner_text()
    assert "開示請求第7号" in page.get_by_test_id("confirm-hold-list").inner_text()
    blocked = page.get_by_test_id("blocked-item")
    assert blocked.count() == 1 and "保留中です（開示請求）" in blocked.inner_text()
    assert "元に戻すことはできません" in page.get_by_test_id("confirm-warning").inner_text()
    assert all(doc(live.ctx, i).state == "live" for i in ids)  # nothing happened yet
    shot(page, "21-officer-execute-confirm")

    # without leaving the held document out: stopped, nothing changed, reasons shown
    page.get_by_test_id("confirm-submit").click()
    page.get_by_test_id("refused-message").wait_for()
    assert "何も変更せずに中止しました" in page.get_by_test_id("refused-message").inner_text()
    assert all(doc(live.ctx, i).state == "live" for i in ids)
    shot(page, "22-officer-execute-stopped")

    page.get_by_test_id("refused-back").click()
    page.get_by_test_id("skip-blocked").check()
    assert page.get_by_test_id("confirm-submit").inner_text().strip() == "廃棄を実行する"
    page.get_by_test_id("confirm-submit").click()
    page.wait_for_url(re.compile(r"msg=executed"))
    assert page.get_by_test_id("batch-status").inner_text() == "廃棄済"
    assert doc(live.ctx, ids[0]).state == "destroyed" and doc(live.ctx, ids[1]).state == "live"
    shot(page, "23-officer-executed")

    # the printable certificate beside the signed JSON
    page.get_by_test_id("certificate-print").click()
    page.get_by_test_id("certificate-id").wait_for()
    assert page.get_by_role("heading", name="廃棄証明書").is_visible()
    with Session(live.ctx.engine) as s:
        key_id = s.exec(select(DisposalCertificate.key_id)).one()
    assert page.get_by_test_id("key-id").inner_text() == key_id
    hint = page.get_by_test_id("verify-hint").inner_text()
    assert (
        hint
        == f"genpon certificate verify {page.get_by_test_id('certificate-id').inner_text()}.json"
    )
    assert "+09:00" in page.get_by_test_id("issued-at").inner_text()
    assert "文書0" in page.content() and "\\u" not in page.content()
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).textAlign") == "center"
    shot(page, "24-certificate-print")
    page.context.close()


def test_approval_refuses_an_item_no_longer_due_and_the_reviewer_can_reject_it(
    browser: Any, live: Live
) -> None:
    from genpon.retention import extension

    _case, ids = make_case(live.ctx, closed=CLOSED_2015, docs=2, title="平成27年度 旅費")
    suzuki = actor(live.ctx, "suzuki")
    with Session(live.ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(
            s, suzuki, action="destroy", timezone="Asia/Tokyo", document_ids=ids
        )
        s.commit()
    with Session(live.ctx.engine) as s:  # 延長 after the batch was made: not due any more
        extension.extend(
            s,
            suzuki,
            scope="document",
            ref=ids[0],
            years=20,
            reason="監査対応",
            timezone="Asia/Tokyo",
        )
        s.commit()
    page = sign_in(browser, live, "sato")
    page.goto(f"{live.url}/records/batches/{b.id}")
    page.get_by_test_id("approve").click()
    page.get_by_test_id("refused-message").wait_for()
    assert "却下してから" in page.get_by_test_id("refused-message").inner_text()
    [item] = page.get_by_test_id("refused-item").all_inner_texts()
    assert str(ids[0]) in item and "保存期間が満了していません（満了日 " in item
    shot(page, "25-officer-approval-refused")
    page.get_by_test_id("refused-back").click()
    assert page.get_by_test_id("batch-status").inner_text() == "審査待ち"
    # reject that one item, then approve the rest
    page.locator(f'input[name="document_id"][value="{ids[0]}"]').check()
    page.get_by_label("理由・意見（任意）").fill("延長されたため")
    page.get_by_test_id("reject").click()
    page.wait_for_url(re.compile(r"msg=reject"))
    page.get_by_test_id("approve").click()
    page.wait_for_url(re.compile(r"msg=approve"))
    assert page.get_by_test_id("batch-status").inner_text() == "承認済"
    page.context.close()
