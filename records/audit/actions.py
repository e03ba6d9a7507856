"""Every action name the audit log records (監査ログの操作名), in one place.

The names are hashed into the chain (``event_hash``), so a member's value never changes once
events carry it: rename the member if you must, never the string. ``AuditAction`` is a
``StrEnum``, so a member is stored, hashed and compared exactly as its string; the web timeline
(``genpon.api.web.timeline``) has a sentence for each member, which a test checks.
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    # 案件 cases
    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_MEMBER_ADDED = "case.member_added"
    CASE_CLOSED = "case.closed"
    CASE_REOPENED = "case.reopened"
    # フォルダ folders
    FOLDER_CREATED = "folder.created"
    # 文書 documents
    DOCUMENT_DEPOSITED = "document.deposited"
    DOCUMENT_IMPORTED = "document.imported"
    DOCUMENT_APPROVED = "document.approved"
    DOCUMENT_COPIED = "document.copied"
    DOCUMENT_COPY_MADE = "document.copy_made"
    DOCUMENT_READ = "document.read"
    DOCUMENT_PREVIEWED = "document.previewed"
    DOCUMENT_VERSIONED = "document.versioned"
    DOCUMENT_CORRECTED = "document.corrected"
    DOCUMENT_ORIGINAL_MOVED = "document.original_moved"
    DOCUMENT_DESTROYED = "document.destroyed"
    DOCUMENT_TRANSFERRED = "document.transferred"
    # 保存期間・廃棄・移管 retention
    RETENTION_HOLD_PLACED = "retention.hold_placed"
    RETENTION_HOLD_RELEASED = "retention.hold_released"
    RETENTION_EXTENDED = "retention.extended"
    RETENTION_BATCH_CREATED = "retention.batch_created"
    RETENTION_BATCH_APPROVED = "retention.batch_approved"
    RETENTION_BATCH_REJECTED = "retention.batch_rejected"
    RETENTION_BATCH_EXECUTION_STARTED = "retention.batch_execution_started"
    RETENTION_BATCH_EXECUTED = "retention.batch_executed"
    RETENTION_ITEM_SKIPPED = "retention.item_skipped"
    RETENTION_DISPOSAL_REQUESTED = "retention.disposal_requested"
    RETENTION_DISPOSAL_APPROVED = "retention.disposal_approved"
    RETENTION_DISPOSAL_REJECTED = "retention.disposal_rejected"
    RETENTION_TRANSFER_EXPORTED = "retention.transfer_exported"
    RETENTION_TRANSFER_ACKNOWLEDGED = "retention.transfer_acknowledged"
    # 監査・完全性 audit and integrity
    AUDIT_EXPORTED = "audit.exported"
    FIXITY_COMPLETED = "fixity.completed"
    FIXITY_FAILED = "fixity.failed"
    # 取込 legacy-share import
    IMPORT_STARTED = "import.started"
    IMPORT_COMPLETED = "import.completed"
    # マスタ・利用者・鍵 master data, users, keys
    MASTER_IMPORTED = "master.imported"
    USER_PASSWORD_SET = "user.password_set"
    KEY_ISSUED = "key.issued"
    KEY_REVOKED = "key.revoked"
    # システム署名鍵の交替 (genpon_verify.verify.ROTATION_ACTION, which must stay standard-library)
    SYSTEM_KEY_ROTATED = "system_key.rotated"
    # サインイン sign-in (web)
    SIGN_IN_FAILED = "auth.sign_in_failed"
    SIGN_IN_LOCKED = "auth.sign_in_locked"
    # 管理画面 administration (issue 18, point 9)
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    MASTER_EXPORTED = "master.exported"
