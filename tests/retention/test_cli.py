"""genpon retention … and genpon certificate verify, run in-process (see
tests/records/test_cli.py); the certificate check once more in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.records.test_cli import Cli, cli  # noqa: F401  (fixture)


def test_cli_retention_cycle(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    cli("init", "--demo", "--no-history")  # exact counts: no demo past cases
    # 1年未満 (A0201): due as soon as the case is closed
    case = json.loads(
        cli(
            "--json",
            "--as",
            "suzuki",
            "case",
            "create",
            "軽易な照会",
            "--org",
            "SOUMU-SOUMU",
            "--class",
            "A0201",
        ).stdout
    )
    f = tmp_path / "照会.txt"
    f.write_text("照会への回答です。", encoding="utf-8")
    dep = json.loads(
        cli(
            "--json",
            "--as",
            "suzuki",
            "deposit",
            str(f),
            "--case",
            case["case_id"],
            "--approved-on",
            "2026-05-01",
        ).stdout
    )
    cli("--as", "suzuki", "case", "close", case["case_id"])

    due = cli("--as", "suzuki", "retention", "due")
    assert case["case_id"] in due.stdout and str(dep["id"]) in due.stdout
    csv_text = cli("--as", "yamada", "retention", "due", "--csv", "-").stdout
    assert csv_text.startswith("\ufeff案件ID") and case["case_id"] in csv_text
    bad = cli("--as", "tanaka", "retention", "due", ok=False)
    assert (
        bad.returncode == 1
        and bad.stderr.strip().startswith("genpon:")
        and "[role_required]" in bad.stderr
    )
    assert len(bad.stderr.strip().splitlines()) == 1

    hold = json.loads(
        cli(
            "--json",
            "--as",
            "suzuki",
            "retention",
            "hold",
            "document",
            str(dep["id"]),
            "--type",
            "disclosure",
            "--reason",
            "開示請求",
        ).stdout
    )
    blocked = cli(
        "--as", "suzuki", "retention", "batch", "create", "--doc", str(dep["id"]), ok=False
    )
    assert blocked.returncode == 1 and "[items_not_disposable]" in blocked.stderr
    cli("--as", "suzuki", "retention", "release", str(hold["id"]), "--reason", "開示決定済み")

    batch = json.loads(cli("--json", "--as", "suzuki", "retention", "batch", "create").stdout)
    own = cli("--as", "suzuki", "retention", "approve", str(batch["id"]), ok=False)
    assert own.returncode == 1 and "[four_eyes_required]" in own.stderr
    cli("--as", "sato", "retention", "approve", str(batch["id"]))
    done = cli("--as", "sato", "retention", "execute", str(batch["id"]))
    assert "廃棄 1 件" in done.stdout and "DC-" in done.stdout
    again = cli("--as", "sato", "retention", "execute", str(batch["id"]), ok=False)
    assert again.returncode == 1 and "[batch_already_executed]" in again.stderr

    cert = tmp_path / "cert.json"
    cli("--as", "yamada", "retention", "certificate", str(batch["id"]), "-o", str(cert))
    ok = cli("certificate", "verify", str(cert))
    assert "検証成功" in ok.stdout
    printable = tmp_path / "cert.html"
    cli(
        "--as",
        "yamada",
        "retention",
        "certificate",
        str(batch["id"]),
        "--html",
        "-o",
        str(printable),
    )
    page = printable.read_text(encoding="utf-8")
    key_id = json.loads(cert.read_text(encoding="utf-8"))["signature"]["key_id"]
    assert "<h1>廃棄証明書</h1>" in page and key_id in page and "\\u" not in page
    assert "genpon certificate verify DC-" in page and "+09:00" in page
    data = json.loads(cert.read_text(encoding="utf-8"))
    assert data["items"][0]["document_id"] == dep["id"]
    data["items"][0]["size"] += 1
    data["total_size"] += 1
    cert.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    bad = cli("certificate", "verify", str(cert), ok=False)
    assert bad.returncode == 1 and "bad_signature" in bad.stderr
    # the same tampered certificate through the console script in a real process
    env = {
        **os.environ,
        "GENPON_DATA_DIR": str(tmp_path / "data"),
        "GENPON_ENVIRONMENT": "test",
        "GENPON_CLI_USER": "admin",
    }
    env.pop("GENPON_DATABASE_URL", None)
    real = subprocess.run(
        [str(Path(sys.executable).with_name("genpon")), "certificate", "verify", str(cert)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert real.returncode == 1 and real.stderr.startswith("genpon: ")
    assert "bad_signature" in real.stderr and real.stderr.count("\n") == 1

    reg = tmp_path / "register.xlsx"
    cli("--as", "suzuki", "retention", "register", "-o", str(reg), "--org", "SOUMU-SOUMU")
    assert reg.stat().st_size > 0
    bad_fmt = cli(
        "--as", "suzuki", "retention", "register", "-o", str(tmp_path / "r.pdf"), ok=False
    )
    assert bad_fmt.returncode == 1
