"""Boulanger-Lewandowski piano-roll pickles, read without running their code.

The published sets (`JSB_Chorales.pickle`, `Nottingham.pickle`,
`MuseData.pickle`, `Piano-midi.de.pickle`) are a dict with `train`, `valid`
and `test` lists of pieces; a piece is a list of frames, a frame a sequence
of the MIDI note numbers sounding. They circulate in two forms: the authors'
Python 2 pickles of plain ints, and copies pickled with NumPy, whose note
numbers are NumPy integer scalars (`numpy.int64`).

Unpickling can call any importable function, so the unpickler here looks up
no real global at all. It builds lists, tuples, dicts, numbers and strings,
and answers exactly four global names with stand-ins written here, enough
to rebuild a NumPy integer scalar from its bytes:

* `numpy.dtype` (NumPy's dtype pickle: `dtype(code, align, copy)` then its
  state) accepts only the integer codes `i1 i2 i4 i8 u1 u2 u4 u8` and a
  byte order;
* `numpy.core.multiarray.scalar` / `numpy._core.multiarray.scalar` (NumPy 1
  and 2 spell it differently) turns such a dtype and its bytes into a plain
  Python int with `int.from_bytes`;
* `_codecs.encode`, which Python 3 uses to pickle bytes at protocols 0-2,
  accepts only text and the latin-1 codec.

NumPy itself is never imported or called, and every other global is refused
when the pickle names it, before anything it references could run.

A pickle can also describe far more than it stores, since one list may be
referenced many times: a 40 kB file of shared references would expand to
gigabytes of rolls. Every frame and note costs at least one byte in a pickle
that does not share them, so a file whose frames and notes, counted as
often as they are reached, outnumber `MAX_ITEMS_PER_BYTE` times its size
and `FREE_ITEMS` (or whose frames exceed `MAX_FRAMES`) is refused before
any roll is built. The
structure is read to its fixed depth (split, piece, frame, note) without
recursion, and error messages never print a container, so deep nesting is
refused with a message instead of exhausting the stack.

Reference: Boulanger-Lewandowski, Bengio and Vincent, "Modeling temporal
dependencies in high-dimensional sequences: application to polyphonic music
generation and transcription", ICML 2012.
"""

import io
import math
import numbers
import pickle
import pickletools
import sys

import numpy as np

from keras_deeprnn.data.rolls import HIGHEST_NOTE
from keras_deeprnn.data.rolls import LOWEST_NOTE
from keras_deeprnn.data.rolls import NUM_NOTES
from keras_deeprnn.data.splits import SPLITS

PICKLE_EXTENSIONS = (".pickle", ".pkl")
# A pickle that shares nothing spends at least a byte on every frame and note;
# four per byte leaves room for a writer that reused some frame objects, and
# any file may describe `FREE_ITEMS` (a few tens of MB of rolls at most).
MAX_ITEMS_PER_BYTE = 4
FREE_ITEMS = 100_000
# About 700 MB of float32 rolls; the largest published set has under 400k.
MAX_FRAMES = 2_000_000
# Hashing a tuple (as a dict key) recurses in C without a guard, so a deeply
# nested one crashes the interpreter while it is unpickled. A piano-roll
# pickle nests tuples two deep (a NumPy scalar's arguments).
MAX_TUPLE_DEPTH = 32

_INTEGER_CODES = ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8")
_BYTE_ORDERS = {"<": "little", ">": "big", "|": "little", "=": sys.byteorder}


class _Refused(Exception):
    """A pickle asked for something the restricted unpickler does not build."""


class _IntegerDtype:
    """Stand-in for `numpy.dtype`, describing integer types only.

    NumPy pickles a dtype as `dtype(code, align, copy)` followed by the
    state `(version, byte order, subarray, names, fields, item size,
    alignment, flags)`; an integer type has no subarray, names or fields.
    """

    # No instance dict, so a pickle's BUILD cannot attach anything else.
    __slots__ = ("code", "byteorder")

    def __new__(cls, code=None, align=False, copy=False):
        if not isinstance(code, str) or code not in _INTEGER_CODES:
            raise _Refused(
                f"numpy.dtype({_describe(code)}): only the integer dtypes "
                f"{', '.join(_INTEGER_CODES)} are accepted"
            )
        dtype = super().__new__(cls)
        dtype.code = code
        dtype.byteorder = "|" if code[1] == "1" else "<"
        return dtype

    def __setstate__(self, state):
        plain = (
            isinstance(state, tuple)
            and len(state) in (8, 9)
            and state[1] in _BYTE_ORDERS
            and state[2] is None
            and state[3] is None
            and state[4] is None
        )
        if not plain:
            raise _Refused(
                f"numpy.dtype({self.code!r}) with the state "
                f"{_describe(state)}: expected (version, byte order, None, "
                "None, None, ...) of a plain integer type"
            )
        self.byteorder = state[1]


def _integer_scalar(dtype=None, data=None):
    """Stand-in for `numpy.core.multiarray.scalar`: the Python int it holds."""
    if not isinstance(dtype, _IntegerDtype):
        raise _Refused(
            f"numpy scalar of {_describe(dtype)}: only NumPy integer scalars "
            "are accepted"
        )
    if isinstance(data, str):
        # A Python 2 byte string, read as latin-1 text: one char per byte.
        data = data.encode("latin-1")
    size = int(dtype.code[1])
    if not isinstance(data, bytes) or len(data) != size:
        raise _Refused(
            f"numpy scalar of dtype {dtype.code!r} from {_describe(data)}: "
            f"expected {size} byte(s)"
        )
    signed = dtype.code[0] == "i"
    return int.from_bytes(data, _BYTE_ORDERS[dtype.byteorder], signed=signed)


def _latin1_bytes(text=None, encoding=None, errors="strict"):
    """Stand-in for `_codecs.encode`, as Python 3 pickles bytes at protocol 2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused(
            f"_codecs.encode({_describe(text)}, {_describe(encoding)}): only "
            "text encoded as latin-1 (how Python pickles bytes) is accepted"
        )
    return text.encode("latin-1")


_STAND_INS = {
    ("numpy", "dtype"): _IntegerDtype,
    ("numpy.core.multiarray", "scalar"): _integer_scalar,
    ("numpy._core.multiarray", "scalar"): _integer_scalar,
    ("_codecs", "encode"): _latin1_bytes,
}


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds plain data and NumPy integer scalars; refuses every other global."""

    def find_class(self, module, name):
        # Every code path that could run code in a pickle starts by looking
        # up a global; none is ever imported, a few are answered by stand-ins.
        stand_in = _STAND_INS.get((module, name))
        if stand_in is None:
            raise _Refused(
                f"it references the global {_describe_name(module)}."
                f"{_describe_name(name)}"
            )
        return stand_in


def _load_pickle(path, *, limit):
    try:
        # Read whole so that no length claimed inside the file allocates more.
        raw = path.read_bytes()
        _check_tuple_depth(raw)
        # latin1 reads the byte strings of Python 2 pickles.
        data = _PlainDataUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _Refused as err:
        raise ValueError(
            f"load_music: refused to load {path}: {err}. Only lists, tuples, "
            "dicts, numbers, strings and NumPy integer scalars are accepted "
            "(a Boulanger-Lewandowski piano-roll pickle holds nothing else)."
        ) from None
    except Exception as err:
        raise ValueError(
            f"load_music: could not read {path} as a pickle "
            f"({type(err).__name__}: {_shorten(str(err))})."
        ) from None
    if not isinstance(data, dict) or not all(split in data for split in SPLITS):
        raise ValueError(
            f"load_music: {path} must hold a dict with keys {SPLITS}, each a "
            f"list of pieces; received {_describe_keys(data)}."
        )
    chosen = {}
    for split in SPLITS:
        pieces = data[split]
        if not isinstance(pieces, (list, tuple)):
            raise ValueError(
                f"load_music: {path}[{split!r}] must be a list of pieces; "
                f"received {type(pieces).__name__}."
            )
        chosen[split] = pieces[:limit] if limit else pieces
    _check_expansion(path, len(raw), chosen)
    result = {
        split: [
            _frames_to_roll(piece, f"{path}[{split!r}][{i}]")
            for i, piece in enumerate(pieces)
        ]
        for split, pieces in chosen.items()
    }
    if not any(result.values()):
        raise ValueError(f"load_music: {path} holds no piece in any split.")
    return result


def _check_tuple_depth(raw):
    """Refuse tuples nested deeper than `MAX_TUPLE_DEPTH`, before unpickling.

    Follows the unpickler's stack with `pickletools` (which runs nothing),
    keeping for each entry how deep the tuples in it are nested. Tuples are
    immutable, so that depth is known when one is built, also through the
    memo.
    """
    stack, marks, memo = [], [], {}
    try:
        for op, arg, _ in pickletools.genops(raw):
            name = op.name
            if name == "MARK":
                marks.append(len(stack))
                continue
            if name == "POP" and marks and len(stack) == marks[-1]:
                marks.pop()
                continue
            popped, prefix, pushed = _STACK_EFFECTS[name]
            if prefix is not None:
                start = marks.pop()
                items = stack[start:]
                del stack[start - prefix :]
            elif popped:
                if len(stack) - (marks[-1] if marks else 0) < popped:
                    raise _Refused(f"{name} finds too few items on the stack")
                items = stack[-popped:]
                del stack[-popped:]
            else:
                items = ()
            if name in _TUPLE_OPCODES:
                depth = 1 + max(items, default=0)
                if depth > MAX_TUPLE_DEPTH:
                    raise _Refused(f"it nests tuples more than {MAX_TUPLE_DEPTH} deep")
                stack.append(depth)
            elif name in _GET_OPCODES:
                stack.append(memo.get(arg, 0))
            elif name in _PUT_OPCODES:
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = items[0]
                stack.append(items[0])
            elif name == "DUP":
                stack.extend(items * 2)
            else:
                stack.extend([0] * pushed)
    except IndexError:
        raise _Refused("its opcodes do not form a valid pickle") from None


def _stack_effect(op):
    """`(items popped, items below the mark popped or None, items pushed)`."""
    before = [kind.name for kind in op.stack_before]
    prefix = before.index("mark") if "mark" in before else None
    return len(before), prefix, len(op.stack_after)


_STACK_EFFECTS = {op.name: _stack_effect(op) for op in pickletools.opcodes}
_TUPLE_OPCODES = frozenset(("EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"))
_GET_OPCODES = frozenset(("GET", "BINGET", "LONG_BINGET"))
_PUT_OPCODES = frozenset(("PUT", "BINPUT", "LONG_BINPUT"))


def _check_expansion(path, size, chosen):
    """Refuse a pickle that describes far more frames and notes than it stores."""
    budget = max(MAX_ITEMS_PER_BYTE * size, FREE_ITEMS)
    items = frames = 0
    for pieces in chosen.values():
        for piece in pieces:
            if not isinstance(piece, (list, tuple)):
                continue  # explained when its roll is built
            frames += len(piece)
            items += 1 + len(piece)
            if frames > MAX_FRAMES or items > budget:
                _refuse_expansion(path, size)
            for frame in piece:
                if isinstance(frame, (list, tuple)):
                    items += len(frame)
                if items > budget:
                    _refuse_expansion(path, size)


def _refuse_expansion(path, size):
    raise ValueError(
        f"load_music: refused to load {path}: its {size} bytes describe more "
        f"than max({MAX_ITEMS_PER_BYTE} per byte, {FREE_ITEMS}) pieces, frames "
        f"and notes, or more than {MAX_FRAMES} frames, so it repeats shared "
        "lists and would exhaust memory. Expected a piano-roll pickle that "
        "stores each frame once."
    )


def _frames_to_roll(piece, where):
    if not isinstance(piece, (list, tuple)):
        raise ValueError(
            f"load_music: {where} must be a list of frames; received "
            f"{type(piece).__name__}."
        )
    roll = np.zeros((len(piece), NUM_NOTES), np.float32)
    for t, frame in enumerate(piece):
        if not isinstance(frame, (list, tuple)):
            raise ValueError(
                f"load_music: {where}[{t}] must be a list of MIDI note numbers; "
                f"received {type(frame).__name__}."
            )
        for note in frame:
            real = isinstance(note, numbers.Real) and not isinstance(note, bool)
            if not real or not math.isfinite(note) or note != int(note):
                raise ValueError(
                    f"load_music: {where}[{t}] holds {_describe(note)}; "
                    "expected whole MIDI note numbers."
                )
            if not LOWEST_NOTE <= note <= HIGHEST_NOTE:
                raise ValueError(
                    f"load_music: {where}[{t}] holds the note {_describe(note)}; "
                    f"expected MIDI numbers {LOWEST_NOTE}..{HIGHEST_NOTE} (the "
                    "88 piano keys)."
                )
            roll[t, int(note) - LOWEST_NOTE] = 1.0
    return roll


# Messages show what was found without ever printing a container: a hostile
# one may be nested deep enough to exhaust the stack, or be huge.


def _describe(value):
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"an integer of {value.bit_length()} bits"
        return repr(value)
    if isinstance(value, (str, bytes)):
        return _shorten(repr(value))
    if isinstance(value, (list, tuple, dict)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    return f"an object of type {type(value).__name__}"


def _describe_name(text):
    return _shorten(text) if isinstance(text, str) else _describe(text)


def _describe_keys(data):
    if not isinstance(data, dict):
        return _describe(data)
    keys = [_describe(key) for key in list(data)[:10]]
    more = ", ..." if len(data) > 10 else ""
    return f"a dict with keys [{', '.join(keys)}{more}]"


def _shorten(text, limit=80):
    return text if len(text) <= limit else text[: limit - 3] + "..."
