"""genpon-verify: check a Genpon auditor export without trusting the server (監査用検証ツール).

Depends only on the Python standard library and ``cryptography``. Modules:

* :mod:`genpon_verify.canonical` — canonical event form and hash (a vendored copy of
  ``records/audit_format.py``; a test keeps the two identical in behaviour);
* :mod:`genpon_verify.merkle` — RFC 6962 / RFC 9162 Merkle tree hashes, inclusion and
  consistency proofs (the server uses this very module through ``records.merkle``);
* :mod:`genpon_verify.verify` — checks an export directory and names the first failure.
"""

from genpon_verify.verify import Failure, Report, verify_export

__all__ = ["Failure", "Report", "verify_export"]
