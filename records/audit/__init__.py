"""Audit and integrity (監査・完全性): the hash-chained event log, its signed checkpoints, the
Merkle proofs over it, fixity audits of stored blobs, and the export an auditor verifies offline.

- :mod:`.chain` appends events inside the caller's transaction (``audit.record``).
- :mod:`.actions` names every action (:class:`AuditAction`); the names are hashed into the chain,
  so they never change.
- :mod:`.format` is the byte-exact event form shared with ``genpon_verify``.
- :mod:`.checkpoints`, :mod:`.merkle`: signed tree heads and inclusion/consistency proofs.
- :mod:`.fixity`: scheduled re-hashing of blobs against their records.
- :mod:`.query`, :mod:`.export`: reading the log, and the package ``genpon-verify`` checks.
- :mod:`.models`: the tables of checkpoints and fixity runs.
"""

from genpon.records.audit.actions import AuditAction
from genpon.records.audit.chain import case_timeline, record, record_many

__all__ = ["AuditAction", "case_timeline", "record", "record_many"]
