"""Documents: deposit, originals and copies (原本・写し), approval (決裁), versions, corrections.

One module per part, all names importable from here (``from genpon.records import documents``):

- :mod:`.deposit`: one upload becomes a document, in the order of durable steps (staged blob,
  validation, ``put_staged``, rows in the caller's transaction); idempotent replays.
- :mod:`.originals`: exactly one live original per content, copies point to it (写し).
- :mod:`.approval`: 決裁 data and approving a working document.
- :mod:`.versions`: new versions of working documents, corrections of official ones.
- :mod:`.reading`: the detail view, who holds a content, opening a content, folder listings.
- :mod:`.batch`: bulk deposit for the legacy import (a few statements per batch).
- :mod:`.common`: names, titles, the blob row, reading a document with its permission checks.

A crash after the blob is stored and before the commit leaves an unreferenced blob, which
``genpon gc`` collects after a grace period; no row ever points to a blob that is not durably
stored.
"""

from genpon.records import audit
from genpon.records.documents.approval import ApprovalIn, approve
from genpon.records.documents.batch import BatchItem, BatchOutcome, Placed, deposit_batch
from genpon.records.documents.common import (
    SHA256_HEX,
    clean_filename,
    current_original,
    enqueue_index,
    get_document,
    valid_sha256,
)
from genpon.records.documents.deposit import DepositIn, DepositOutcome, deposit, resolve_target
from genpon.records.documents.originals import (
    copy_to_folder,
    current_originals,
    hand_over_original,
    promote_to_original,
)
from genpon.records.documents.reading import (
    DocumentView,
    HashHolding,
    by_hash,
    deposited_view,
    list_folder_documents,
    open_content,
    view,
)
from genpon.records.documents.versions import add_version, versions

__all__ = [
    "SHA256_HEX",
    "ApprovalIn",
    "BatchItem",
    "BatchOutcome",
    "DepositIn",
    "DepositOutcome",
    "DocumentView",
    "HashHolding",
    "Placed",
    "add_version",
    "approve",
    "audit",
    "by_hash",
    "clean_filename",
    "copy_to_folder",
    "current_original",
    "current_originals",
    "deposit",
    "deposit_batch",
    "deposited_view",
    "enqueue_index",
    "get_document",
    "hand_over_original",
    "list_folder_documents",
    "open_content",
    "promote_to_original",
    "resolve_target",
    "valid_sha256",
    "versions",
    "view",
]
