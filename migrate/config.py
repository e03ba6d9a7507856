"""Import configuration: the rule that picks the original (原本) of an exact-duplicate group,
and the near-duplicate parameters.

The original rule (setting ``GENPON_IMPORT_ORIGINAL_RULE``, default
``official,case,oldest,shortest``) is a comma-separated list of criteria applied in order; the
first criterion that tells two candidates apart decides:

``official``  a document already official (決裁済) in Genpon wins
``case``      a document already in a case folder (案件フォルダ) wins
``oldest``    the oldest modification time wins (legacy mtime; for documents already in Genpon
              the imported mtime in their provenance, else their registration time)
``newest``    the newest modification time wins
``shortest``  the shortest path wins (fewest characters, the folder path included)

Ties are broken by the path itself, so the choice is deterministic and a resumed import makes
the same decision. Whatever the rule, an official original is never displaced by a working
document (Genpon's invariant: official content holds originality).
"""

from __future__ import annotations

from genpon.core.errors import InvalidInput

CRITERIA = ("official", "case", "oldest", "newest", "shortest")

#: character shingle length over NFKC-normalized text with whitespace removed
SHINGLE_K = 5
#: MinHash bins of the one-permutation signature (estimate error ~ sqrt(J(1-J)/NUM_PERM):
#: ±0.025 at J=0.8); signatures of different schemes are not comparable (see near_dupes)
NUM_PERM = 256
#: default similarity (estimated Jaccard) for reporting a near-duplicate pair
DEFAULT_THRESHOLD = 0.8
#: LSH candidate threshold sits below the reporting threshold so borderline pairs are checked
LSH_MARGIN = 0.15
#: a candidate whose estimate lies closer than this to the threshold is decided by the exact
#: Jaccard of the two texts' shingles when both texts can be had (the estimate's error is ~0.025)
VERIFY_BAND = 0.08
#: at most this many candidates per search are checked exactly, the closest to the threshold
#: first (a tree of overlapping texts can have tens of thousands; each check reads two texts)
VERIFY_MAX_PAIRS = 1000
#: text beyond this many characters is not used for similarity (bounded time and memory)
MAX_TEXT_CHARS = 1_000_000


def parse_rule(raw: str) -> tuple[str, ...]:
    """``"official,case,oldest,shortest"`` -> criteria tuple; unknown names are refused."""
    parts = tuple(p.strip().lower() for p in (raw or "").split(",") if p.strip())
    unknown = [p for p in parts if p not in CRITERIA]
    if unknown or not parts:
        raise InvalidInput(
            "invalid_original_rule",
            f"原本の選定規則が不正です: {raw!r}（使える条件: {', '.join(CRITERIA)}）",
            {"allowed": list(CRITERIA)},
        )
    if "oldest" in parts and "newest" in parts:
        raise InvalidInput("invalid_original_rule", "oldest と newest は同時に指定できません。")
    return parts


def check_threshold(value: float) -> float:
    if not 0.3 <= value <= 1.0:
        raise InvalidInput("invalid_threshold", "類似度のしきい値は 0.3〜1.0 で指定してください。")
    return value
