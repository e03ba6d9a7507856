"""genpon-verify: check a Genpon auditor export without trusting the server (監査用検証ツール).

Depends only on the Python standard library and ``cryptography``. Modules:

* :mod:`genpon_verify.canonical` — canonical JSON of events and signed objects (the one copy:
  the server imports it);
* :mod:`genpon_verify.keys` — key ids and Ed25519 signature checks (the server's too);
* :mod:`genpon_verify.merkle` — RFC 6962 / RFC 9162 Merkle tree hashes, inclusion and
  consistency proofs (the server uses this very module through ``records.merkle``);
* :mod:`genpon_verify.verify` — checks an export directory and names the first failure;
* :mod:`genpon_verify.proofs` — checks a standalone inclusion or consistency proof.
"""

from genpon_verify.verify import Failure, Report, verify_export

__all__ = ["Failure", "Report", "verify_export"]
