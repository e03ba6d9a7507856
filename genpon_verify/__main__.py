"""genpon-verify DIR [--blobs PATH] [--checkpoint FILE]… [--trusted-key PEM]… [--json]
genpon-verify PROOF.json --keys DIR

Exit status: 0 everything verified, 1 a check failed, 2 the input could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from genpon_verify.proofs import verify_proof
from genpon_verify.verify import Report, load_keys, verify_export


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genpon-verify",
        description="Genpon 監査用エクスポートをサーバを信頼せずに検証します。",
    )
    p.add_argument("path", type=Path, help="エクスポートのディレクトリ、または証明のJSONファイル")
    p.add_argument("--blobs", type=Path, help="保管データの写し（ディレクトリ）も再ハッシュする")
    p.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="以前に受け取ったチェックポイント（JSON）。ログがその続きであることを確かめる",
    )
    p.add_argument(
        "--trusted-key",
        type=Path,
        action="append",
        default=[],
        help="別経路で入手した公開鍵（PEM）。最初のチェックポイントはこの鍵の署名でなければならない",
    )
    p.add_argument("--keys", type=Path, help="証明の検証に使う公開鍵のディレクトリ（*.pub）")
    p.add_argument("--json", action="store_true", help="結果をJSONで出力")
    return p


def _print_report(report: Report, seconds: float, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**report.as_dict(), "seconds": round(seconds, 3)}, ensure_ascii=False))
        return
    status = "OK" if report.ok else "NG"
    print(
        f"{status}: イベント {report.events} 件, チェックポイント {report.checkpoints} 件, "
        f"文書 {report.documents} 件, 保管データ {report.blobs_checked} 件 ({seconds:.1f} 秒)"
    )
    print(f"  ルート {report.root_hash}（{report.tree_size} 件）")
    print(f"  公開鍵 {', '.join(report.keys) or '-'}; 信頼の起点 {', '.join(report.anchor_keys)}")
    first = report.first_event_failure
    if first is not None:
        print(f"最初に失敗したイベント: {first.ref}: {first.message}")
    for f in report.failures[:50]:
        print(f"  NG {f}")
    if len(report.failures) > 50:
        print(f"  … ほか {len(report.failures) - 50} 件")
    for w in report.warnings:
        print(f"  注意: {w}")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _without_row_id(data: Any) -> Any:
    return {k: v for k, v in data.items() if k != "id"} if isinstance(data, dict) else data


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.path.is_file():
            proof = _read_json(args.path)
            report = Report()
            keys = load_keys(args.keys, report) if args.keys else {}
            problems = [str(f) for f in report.failures] + verify_proof(proof, keys)
            if args.keys is None:
                problems.append("--keys がないため署名は確認していません")
            for p in problems:
                print(f"NG: {p}")
            hard = [p for p in problems if "--keys" not in p]
            if not hard:
                print(f"OK: {proof.get('type')} proof")
            return 1 if hard else 0
        if not args.path.is_dir():
            print(f"genpon-verify: ありません: {args.path}", file=sys.stderr)
            return 2
        # a checkpoint saved from the API or `genpon --json audit checkpoint` carries the
        # server's row number "id" beside the signed statement: not part of what is signed
        known = [_without_row_id(_read_json(p)) for p in args.checkpoint]
        trusted = [p.read_text() for p in args.trusted_key]
        t0 = time.perf_counter()
        report = verify_export(
            args.path, blobs=args.blobs, known_checkpoints=known, trusted_keys=trusted
        )
        _print_report(report, time.perf_counter() - t0, args.json)
        return 0 if report.ok else 1
    except (OSError, ValueError) as exc:
        print(f"genpon-verify: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
