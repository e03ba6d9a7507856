"""RFC 6962 (Certificate Transparency) Merkle tree over the audit log, standard library only.

Leaves are the audit events in sequence order. The leaf input is the 32-byte event hash, so

* leaf hash   ``MTH({d}) = SHA-256(0x00 || event_hash)``
* node hash   ``SHA-256(0x01 || left || right)``
* empty tree  ``SHA-256("")``

Proof generation follows RFC 6962 section 2.1.1 (``PATH``) and 2.1.2 (``PROOF``); verification
follows the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2. :class:`Frontier` keeps the
perfect subtrees of a growing tree (one hash per set bit of the size), so appending is O(log n)
and roots of very long logs are computed in one streaming pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(event_hash_hex: str) -> bytes:
    """Leaf hash of an event, from its hex event hash."""
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass
class Frontier:
    """Roots of the perfect subtrees of a tree of ``size`` leaves, biggest (leftmost) first."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.hashes.append(leaf)
        self.size += 1
        n = self.size
        # each trailing zero bit of the new size is one merge of two equal subtrees
        while n & 1 == 0:
            right = self.hashes.pop()
            left = self.hashes.pop()
            self.hashes.append(node_hash(left, right))
            n >>= 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Tree head (MTH) of the leaves appended so far."""
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "hashes": [h.hex() for h in self.hashes]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Frontier:
        size = int(data["size"])  # type: ignore[call-overload]
        hashes = [bytes.fromhex(str(h)) for h in data["hashes"]]  # type: ignore[attr-defined]
        if len(hashes) != bin(size).count("1"):
            raise ValueError("frontier does not match its size")
        return cls(size=size, hashes=hashes)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes."""
    f = Frontier()
    f.extend(leaves)
    return f.root()


class _Tree:
    """Subtree hashes over an in-memory list of leaf hashes, with perfect subtrees cached."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self._cache: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self.leaves[lo]
        perfect = n & (n - 1) == 0
        if perfect and (lo, hi) in self._cache:
            return self._cache[(lo, hi)]
        k = _split(n)
        h = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
        if perfect:
            self._cache[(lo, hi)] = h
        return h


def inclusion_path(leaves: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """Audit path (RFC 6962 ``PATH``) of leaf ``index`` in the tree of the first ``tree_size``
    leaves of ``leaves``."""
    if not 0 <= index < tree_size <= len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of size {tree_size}")
    tree = _Tree(leaves)
    path: list[bytes] = []
    lo, hi, m = 0, tree_size, index
    stack: list[bytes] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            stack.append(tree.mth(lo + k, hi))
            hi = lo + k
        else:
            stack.append(tree.mth(lo, lo + k))
            lo, m = lo + k, m - k
    path = list(reversed(stack))
    return path


def consistency_path(leaves: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """Consistency proof (RFC 6962 ``PROOF``) between the trees of sizes ``first`` and ``second``."""
    if not 0 < first <= second <= len(leaves):
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    tree = _Tree(leaves)
    stack: list[bytes] = []
    lo, hi, m, complete = 0, second, first, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            stack.append(tree.mth(lo + k, hi))
            hi = lo + k
        else:
            stack.append(tree.mth(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        stack.append(tree.mth(lo, hi))
    return list(reversed(stack))


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` under ``root``?"""
    if index < 0 or index >= tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree of size ``second`` an append-only extension of ``first``?"""
    if first < 0 or second < first:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path  # every tree extends the empty tree
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def roots_at(
    leaves: Iterable[bytes], sizes: Iterable[int], on_root: Callable[[int, bytes], None]
) -> int:
    """Stream ``leaves`` once, calling ``on_root(size, root)`` at each of ``sizes``; return count."""
    wanted = sorted(set(sizes))
    f = Frontier()
    i = 0
    if wanted and wanted[0] == 0:
        on_root(0, EMPTY_ROOT)
        i = 1
    for leaf in leaves:
        f.append(leaf)
        while i < len(wanted) and wanted[i] == f.size:
            on_root(f.size, f.root())
            i += 1
    return f.size
