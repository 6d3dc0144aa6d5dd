"""Where the music comes from: the built-in sets and folders of score files.

The built-in sets are lists of files in the corpus that music21 ships, so
they need no download; a folder is searched recursively for score files.
Each source gives `(piece id, path, split or None)` entries; the piece id is
the file's path relative to the source, which `splits.stable_order` hashes.
Paths are compared resolved, so a virtual environment or corpus reached
through a symbolic link gives the same ids as the real location.
"""

import pathlib

from keras_deeprnn.data.rolls import _import_music21
from keras_deeprnn.data.splits import SPLITS

MUSIC_EXTENSIONS = (".abc", ".krn", ".mid", ".midi", ".musicxml", ".mxl", ".xml")

MUSIC_DATASETS = {
    "jsb_chorales": (
        "Bach's four-part chorales as music21 ships them (the 371 "
        "Riemenschneider numbers, 350 distinct files), every part, one frame "
        "per quarter note, transposed to C major / A minor. Imitates JSB "
        "Chorales."
    ),
    "folk_tunes": (
        "British, Irish and American dance tunes in ABC: the Nottingham Music "
        "Database sample and Ryan's Mammoth Collection from the music21 "
        "corpus, melody plus any chord symbols, one frame per eighth note, "
        "transposed to C. Imitates Nottingham."
    ),
    "classical_polyphony": (
        "Multi-voice art music from the music21 corpus: Renaissance and "
        "earlier polyphony (Palestrina, Monteverdi, Josquin, the Trecento, "
        "Ciconia, da Lucca, Lusitano) and Baroque to Romantic chamber, piano "
        "and vocal scores (Corelli, Handel, C.P.E. Bach, Haydn, Mozart, "
        "Beethoven, Weber, Schubert, the Schumanns, Chopin, Verdi), one frame "
        "per eighth note, transposed to C. Imitates MuseData."
    ),
}

FRAME_QUARTER_LENGTHS = {
    "jsb_chorales": 1.0,
    "folk_tunes": 0.5,
    "classical_polyphony": 0.5,
}

_CORPUS_FOLDERS = {
    "folk_tunes": ("nottingham-dataset", "ryansMammoth"),
    "classical_polyphony": (
        "palestrina",
        "monteverdi",
        "josquin",
        "trecento",
        "ciconia",
        "luca",
        "lusitano",
        "corelli",
        "handel",
        "cpebach",
        "haydn",
        "mozart",
        "beethoven",
        "weber",
        "schubert",
        "schumann_robert",
        "schumann_clara",
        "chopin",
        "verdi",
    ),
}


def _builtin_files(name):
    """`(piece id, path, None)` for each file of a built-in data set."""
    music21 = _import_music21()
    # music21's corpus lookups return resolved paths; the root must match.
    corpus_root = pathlib.Path(music21.__file__).resolve().parent / "corpus"
    if name == "jsb_chorales":
        works = sorted(set(music21.corpus.chorales.Iterator(returnType="filename")))
        paths = [_single_work(music21, work) for work in works]
    else:
        paths = []
        for folder in _CORPUS_FOLDERS[name]:
            paths.extend(
                p for p in (corpus_root / folder).rglob("*")
                if p.is_file() and p.suffix.lower() in MUSIC_EXTENSIONS
            )
        # Some works ship twice (.xml and .mxl); keep the first by name.
        unique = {}
        for path in sorted(paths):
            unique.setdefault(path.with_suffix(""), path)
        paths = list(unique.values())
    return [(path.relative_to(corpus_root).as_posix(), path, None) for path in paths]


def _single_work(music21, work):
    found = music21.corpus.getWork(work)
    if isinstance(found, (list, tuple)):
        stem = work.rsplit("/", 1)[-1]
        exact = [pathlib.Path(p) for p in found if pathlib.Path(p).stem == stem]
        found = exact[0] if exact else sorted(map(str, found))[0]
    return pathlib.Path(found).resolve()


def _folder_files(root):
    """`(piece id, path, split or None)` for every score file under `root`."""
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    entries = []
    for top, split in [(split_dirs[s], s) for s in split_dirs] or [(root, None)]:
        for path in sorted(top.rglob("*")):
            if path.is_file() and path.suffix.lower() in MUSIC_EXTENSIONS:
                entries.append((path.relative_to(root).as_posix(), path, split))
    if not entries:
        raise ValueError(
            f"load_music: the folder {str(root)!r} holds no score file; "
            f"expected files ending in {', '.join(MUSIC_EXTENSIONS)} (searched "
            "recursively)."
        )
    return entries


def _fingerprint(root, entries):
    return [
        [piece_id, path.stat().st_size, path.stat().st_mtime_ns]
        for piece_id, path, _ in entries
    ]
