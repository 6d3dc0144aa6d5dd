"""Scores to piano rolls with music21, and the cached loading of a source.

See `keras_deeprnn.data.music` for how a score becomes a roll (sounding
pitch, chord symbols, transposition to C, sampling instants).
"""

import collections
import hashlib
import json
import math
import warnings

import numpy as np

from keras_deeprnn.data.cache import CACHE_FORMAT_VERSION
from keras_deeprnn.data.cache import _cache_root
from keras_deeprnn.data.cache import _read_cache
from keras_deeprnn.data.cache import _write_cache
from keras_deeprnn.data.rolls import HIGHEST_NOTE
from keras_deeprnn.data.rolls import LOWEST_NOTE
from keras_deeprnn.data.rolls import NUM_NOTES
from keras_deeprnn.data.rolls import _import_music21
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.splits import _assign_splits


def _parse_file(path):
    """The scores in one file (an ABC collection holds many)."""
    music21 = _import_music21()
    # music21 warns about every notational oddity; those are not ours to show.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # forceSource: never read or write music21's pickled parse cache.
        parsed = music21.converter.parse(str(path), forceSource=True)
    if isinstance(parsed, music21.stream.Opus):
        return list(parsed.scores)
    return [parsed]


def _score_to_roll(score, frame_quarter_length, transpose=True):
    """`(roll, dropped)`: a score's piano roll and how many notes missed the keys."""
    music21 = _import_music21()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = list(score.parts) or [score]
        if any(getattr(part, "atSoundingPitch", True) is False for part in parts):
            score = score.toSoundingPitch()
            parts = list(score.parts) or [score]
        shift = _shift_to_c(music21, score, parts) if transpose else 0
        events = []
        for part in parts:
            flat = part.flatten()
            symbols = []
            for element in flat.notes:
                if isinstance(element, music21.harmony.ChordSymbol):
                    symbols.append(element)
                    continue
                start = float(element.offset)
                end = start + float(element.quarterLength)
                events.extend((start, end, p.midi) for p in element.pitches)
            part_end = float(flat.highestTime)
            for i, symbol in enumerate(symbols):
                start = float(symbol.offset)
                end = float(symbols[i + 1].offset) if i + 1 < len(symbols) else part_end
                events.extend((start, end, p.midi) for p in symbol.pitches)
        num_frames = math.ceil(float(score.highestTime) / frame_quarter_length - 1e-9)
    roll = np.zeros((max(num_frames, 0), NUM_NOTES), np.float32)
    dropped = 0
    for start, end, midi in events:
        key_number = midi + shift
        if not LOWEST_NOTE <= key_number <= HIGHEST_NOTE:
            dropped += 1
            continue
        # Frame t is on when the note covers the instant t * frame length.
        first = math.ceil(start / frame_quarter_length - 1e-9)
        last = math.ceil(end / frame_quarter_length - 1e-9)
        roll[first:last, key_number - LOWEST_NOTE] = 1.0
    return roll, dropped


def _shift_to_c(music21, score, parts):
    """Semitones (-5..+6) that bring the key signature to no sharps or flats."""
    sharps = []
    for part in parts:
        signature = part.recurse().getElementsByClass(music21.key.KeySignature).first()
        if signature is not None and signature.sharps is not None:
            sharps.append(signature.sharps)
    if sharps:
        count = collections.Counter(sharps).most_common(1)[0][0]
    else:
        try:
            count = score.analyze("key").sharps
        except Exception:  # music21 raises many kinds on empty or odd scores
            return 0
    major_tonic = (7 * count) % 12
    shift = -major_tonic % 12
    return shift - 12 if shift > 6 else shift


def _load_scores(
    *,
    source,
    label,
    list_files,
    extra_key,
    frame_quarter_length,
    limit,
    cache_dir,
    progress,
):
    key = json.dumps(
        {
            "format": CACHE_FORMAT_VERSION,
            "source": source,
            "frame_quarter_length": frame_quarter_length,
            "limit": limit,
            **extra_key,
        },
        sort_keys=True,
    )
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    safe_label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    cache_path = _cache_root(cache_dir) / f"music-{safe_label}-{digest}.npz"
    cached = _read_cache(cache_path, key)
    if cached is not None:
        result, notes = cached
        # The cached data lacks what the build skipped or dropped: say so again.
        for note in notes:
            warnings.warn(f"{note} (Recorded in the cache file {cache_path}; delete it to "
                          "parse the scores again.)", stacklevel=3)
        return result

    entries = _assign_splits(list_files(), limit)
    result = {split: [] for split in SPLITS}
    names = {split: [] for split in SPLITS}
    dropped = 0
    notes = []

    def note(message):
        notes.append(message)
        warnings.warn(message, stacklevel=4)

    bar = _progress_bar(len(entries), f"Parsing {label}", progress)
    try:
        for piece_id, path, split in entries:
            try:
                scores = _parse_file(path)
            except Exception as err:  # music21 raises anything on a bad file
                note(f"load_music: skipped {path}: music21 could not parse it "
                     f"({type(err).__name__}: {err}).")
                bar.update(1)
                continue
            for index, score in enumerate(scores):
                try:
                    roll, lost = _score_to_roll(score, frame_quarter_length)
                except Exception as err:
                    note(f"load_music: skipped tune {index} of {path}: "
                         f"{type(err).__name__}: {err}.")
                    continue
                dropped += lost
                if roll.any():
                    result[split].append(roll)
                    suffix = f"#{index}" if len(scores) > 1 else ""
                    names[split].append(piece_id + suffix)
            bar.update(1)
    finally:
        bar.close()
    if not any(result.values()):
        raise ValueError(
            f"load_music: {source.split(':', 1)[1]!r} gave no piece with notes "
            f"out of {len(entries)} file(s); expected at least one readable "
            "score."
        )
    if dropped:
        note(f"load_music: dropped {dropped} note(s) of {label} that fell "
             f"outside the 88 piano keys (MIDI {LOWEST_NOTE}..{HIGHEST_NOTE}) "
             "after transposition to C.")
    _write_cache(cache_path, key, result, names, notes)
    return result


class _NoProgress:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total, description, progress):
    if not progress:
        return _NoProgress()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, desc=description, unit="file")
