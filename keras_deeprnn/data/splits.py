"""The three splits every data set has, and the fixed order that assigns them.

Where a source has no split of its own, whole files (a score file, a tune)
are ordered by the SHA-1 of their path relative to the source: a fixed
pseudo-random order that depends on nothing else (not on Python's or NumPy's
random generators, nor on the order the file system lists them). The first
`round(HELD_OUT_FRACTION * n)` files of that order are the test split, the
next as many the valid split, the rest train.
"""

import hashlib

SPLITS = ("train", "valid", "test")
HELD_OUT_FRACTION = 0.2


def stable_order(items, key=None):
    """`items` sorted by the SHA-1 of `key(item)` (a string; the item itself
    by default): a shuffle that never changes. Items of equal keys keep
    their order."""
    name = key or (lambda item: item)
    return sorted(items, key=lambda item: hashlib.sha1(name(item).encode("utf-8")).hexdigest())


def held_out_count(total, fraction=HELD_OUT_FRACTION):
    """How many of `total` items each of the test and valid splits gets."""
    return int(fraction * total + 0.5)


def _assign_splits(entries, limit):
    """Deterministic train/valid/test split of `(id, path, split)` entries."""
    if any(split is not None for _, _, split in entries):
        chosen = []
        for split in SPLITS:
            members = [e for e in entries if e[2] == split]
            chosen.extend(members[:limit] if limit else members)
        return chosen
    order = stable_order(entries, key=lambda entry: entry[0])
    if limit:
        order = order[:limit]
    held_out = held_out_count(len(order))
    splits = ["test"] * held_out + ["valid"] * held_out
    splits += ["train"] * (len(order) - len(splits))
    return [(entry[0], entry[1], split) for entry, split in zip(order, splits)]
