"""The ``/prediction`` answer as JSON text, written a column at a time: never a dict per row handed to Flask's
JSON encoder (which cost more than the model for a batch).

The text is exactly what ``json.dumps(rows, separators=(",", ":"))`` writes for the row dicts (``corporation`` when
sent, ``prediction``, ``probability``, and ``imputed`` for a row that lacked features): each column's values are
spelt once, then interleaved. A short answer is spelt by the json module's own functions; a long one by pyarrow's
vectorised kernels (Python's float repr alone costs about a microsecond a value), with pyarrow's spellings turned
into the json module's where they differ (tests/test_serving_fast.py checks both writers against ``json.dumps``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from risk.schema import FEATURES

ARROW_ROWS_MIN = 400  # from this many rows on, pyarrow spells the columns (below, its per-call cost dominates)
JSON_SEPARATORS = (",", ":")  # what Flask's JSON provider writes outside debug mode

Column: TypeAlias = "str | list[str] | pa.Array"  # a constant piece of every row, or one token per row


class Predictions(NamedTuple):
    """The model's answer for each row of a request, as columns."""

    ids: pa.Array | None  # ``corporation`` as pyarrow text (null where empty), when sent
    classes: np.ndarray
    probabilities: np.ndarray
    missing: np.ndarray  # rows x features: which features were empty (filled by the model's imputer)

    def __len__(self) -> int:
        return len(self.classes)

    def rows_json(self, start: int = 0, stop: int | None = None, ensure_ascii: bool = True) -> bytes:
        """Rows ``start`` to ``stop`` as compact JSON objects separated by commas (no brackets), exactly as
        ``json.dumps`` writes the row dicts (``ensure_ascii`` as the app's JSON provider has it), UTF-8 encoded."""
        stop = len(self) if stop is None else min(stop, len(self))
        if stop <= start:
            return b""
        rows = slice(start, stop)
        if stop - start < ARROW_ROWS_MIN:
            return _python_rows(self, rows, ensure_ascii)
        return _arrow_rows(self, rows, ensure_ascii)


def _row_columns(ids: Column | None, classes: Column, probabilities: Column) -> list[Column]:
    """The pieces of each row object in order (the ``imputed`` tail comes last)."""
    head: list[Column] = ['{"corporation":', ids, ',"prediction":'] if ids is not None else ['{"prediction":']
    return [*head, classes, ',"probability":', probabilities]


# --- short answers: the json module's own functions ---


def _python_rows(predictions: Predictions, rows: slice, ensure_ascii: bool) -> bytes:
    count = rows.stop - rows.start
    ids = None
    if predictions.ids is not None:
        ids = _text_tokens(predictions.ids.slice(rows.start, count).to_pylist(), _string_encoder(ensure_ascii))
    columns = _row_columns(
        ids,
        _int_tokens(predictions.classes[rows]),
        list(map(json_float, predictions.probabilities[rows].tolist())),
    )
    columns.append(IMPUTED_TAILS[_missing_codes(predictions.missing[rows])].tolist())
    opening = columns[0]
    columns[0] = "," + opening  # a comma before every row...
    width = len(columns)
    parts: list[str] = [""] * (count * width)
    for offset, column in enumerate(columns):
        parts[offset::width] = [column] * count if isinstance(column, str) else column
    parts[0] = opening  # ...but the first
    return "".join(parts).encode()


def _string_encoder(ensure_ascii: bool) -> Callable[[str], str]:
    """The json module's own string encoder (C), as json.dumps picks it."""
    return json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring


def _text_tokens(values: list[str | None], encode: Callable[[str], str]) -> list[str]:
    """Each text value as a JSON string (``null`` for None)."""
    if None not in values:
        return list(map(encode, values))
    return ["null" if value is None else encode(value) for value in values]


def json_float(value: float) -> str:
    """One float as the json module writes it (repr; NaN and the infinities spelt as JSON's extension)."""
    return float.__repr__(value) if math.isfinite(value) else json.dumps(value)


def _int_tokens(values: np.ndarray) -> list[str]:
    """Each integer as JSON (the few distinct classes spelt once each)."""
    distinct, positions = _distinct(values)
    spelt = np.array([repr(value) for value in distinct], dtype=object)
    return spelt[positions].tolist()


def _distinct(classes: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The distinct classes and, per row, the position of its class among them (without sorting the rows when the
    classes lie close together, as 0 and 1 do)."""
    if len(classes) and classes.max() - classes.min() < 16:
        low = int(classes.min())
        return list(range(low, int(classes.max()) + 1)), classes - low
    distinct, positions = np.unique(classes, return_inverse=True)
    return [int(value) for value in distinct.tolist()], positions.reshape(-1)


def _imputed_tail(mask: int) -> str:
    """The end of a row object: ``}``, or the ``imputed`` list of the features whose bit is set in ``mask``."""
    names = [name for bit, name in enumerate(FEATURES) if mask >> bit & 1]
    return ',"imputed":' + json.dumps(names, separators=JSON_SEPARATORS) + "}" if names else "}"


IMPUTED_TAILS = np.array([_imputed_tail(mask) for mask in range(1 << len(FEATURES))], dtype=object)
FEATURE_BITS = 1 << np.arange(len(FEATURES))


def _missing_codes(missing: np.ndarray) -> np.ndarray:
    """Per row, which features were empty as bits (an index into IMPUTED_TAILS)."""
    return missing.astype("int64") @ FEATURE_BITS


# --- long answers: pyarrow's kernels, spelt as the json module spells ---

# pyarrow spells floats with the same shortest digits as Python's repr (checked on millions in the tests), and
# alike in [1e-4, 1) and below 1e-9; for the rest of [0, 1], by range of the value: (start, end, how repr spells it).
_ARROW_RESPELLINGS: tuple[tuple[float, float, Callable[[pa.Array], pa.Array]], ...] = (
    (1e-5, 1e-4, lambda t: _scientific(t, len("0.0000"), "e-05")),  # 0.000099 -> 9.9e-05
    (1e-6, 1e-5, lambda t: _scientific(t, len("0.00000"), "e-06")),  # 0.0000015 -> 1.5e-06
    (1e-9, 1e-6, lambda t: pc.replace_substring(t, "e-", "e-0")),  # 9e-7 -> 9e-07
)


def _scientific(tokens: pa.Array, zeros: int, exponent: str) -> pa.Array:
    """Decimal spellings "0.0000ddd" (``zeros`` characters before the digits) as repr's "d.dde-05"."""
    digits = pc.utf8_slice_codeunits(tokens, zeros)
    rest = pc.utf8_slice_codeunits(digits, 1)
    point = pc.if_else(pc.greater(pc.utf8_length(rest), 0), ".", "")
    return pc.binary_join_element_wise(pc.utf8_slice_codeunits(digits, 0, 1), point, rest, exponent, "")


ARROW_TAILS = pa.array(IMPUTED_TAILS.tolist(), type=pa.string())


def _arrow_rows(predictions: Predictions, rows: slice, ensure_ascii: bool) -> bytes:
    count = rows.stop - rows.start
    columns: list[Column] = []
    if predictions.ids is not None:
        columns += ['{"corporation":', _arrow_text_tokens(predictions.ids.slice(rows.start, count), ensure_ascii)]
    columns += [
        _arrow_class_pieces(predictions.classes[rows], "," if columns else "{"),
        arrow_float_tokens(predictions.probabilities[rows]),
        pc.take(ARROW_TAILS, pa.array(_missing_codes(predictions.missing[rows]))),
    ]
    each_row = pc.binary_join_element_wise(*columns, "")
    whole = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, count], type=pa.int32()), each_row), ",")
    return whole.cast(pa.binary())[0].as_py()


def _arrow_class_pieces(classes: np.ndarray, opening: str) -> pa.Array:
    """Per row, the piece from ``"prediction"`` to the probability's value: ``,"prediction":1,"probability":``
    (each distinct class spelt once; ``opening`` is "{" when no corporation comes first)."""
    distinct, positions = _distinct(classes)
    pieces = [f'{opening}"prediction":{value!r},"probability":' for value in distinct]
    return pa.array(pieces, type=pa.string()).take(pa.array(positions))


def _arrow_text_tokens(values: pa.Array, ensure_ascii: bool) -> pa.Array:
    """Each text value as a JSON string (``null`` where missing)."""
    values = values.cast(pa.string())
    if _plain_text(values, ensure_ascii):
        return pc.binary_join_element_wise('"', values, '"', "").fill_null("null")
    return pa.array(_text_tokens(values.to_pylist(), _string_encoder(ensure_ascii)), type=pa.string())


def _plain_text(values: pa.Array, ensure_ascii: bool) -> bool:
    """Whether json.dumps writes every value as it is, between quotes: no control character, quote or backslash,
    and with ``ensure_ascii`` nothing beyond ASCII (DEL included). Checked on the UTF-8 bytes at once."""
    filled = values.fill_null("")
    _, offsets, data = filled.buffers()
    if data is None:
        return True
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(filled) + 1, offset=filled.offset * 4)
    text = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]]
    plain = (text >= 0x20) & (text != ord('"')) & (text != ord("\\"))
    if ensure_ascii:
        plain &= text < 0x7F
    return bool(plain.all())


def arrow_float_tokens(values: np.ndarray) -> pa.Array:
    """Each float as the json module writes it, spelt by pyarrow and respelt where pyarrow spells it otherwise:
    by range (_ARROW_RESPELLINGS), 0 and 1 (pyarrow writes "0", "1"), and anything outside [0, 1] (never a
    probability: spelt by Python)."""
    tokens = pc.cast(pa.array(values, type=pa.float64()), pa.string())
    positions: list[np.ndarray] = []
    respelt: list[pa.Array] = []
    for low, high, respell in _ARROW_RESPELLINGS:
        found = np.flatnonzero((values >= low) & (values < high))
        if len(found):
            positions.append(found)
            respelt.append(respell(tokens.take(pa.array(found))))
    whole = np.flatnonzero((values == 0.0) | (values == 1.0))
    if len(whole):
        positions.append(whole)
        respelt.append(pc.binary_join_element_wise(tokens.take(pa.array(whole)), ".0", ""))
    outside = np.flatnonzero(~((values >= 0.0) & (values <= 1.0)))
    if len(outside):
        positions.append(outside)
        respelt.append(pa.array([json_float(value) for value in values[outside].tolist()], type=pa.string()))
    if not positions:
        return tokens
    found = np.concatenate(positions)
    order = np.argsort(found, kind="stable")  # replace_with_mask takes the replacements in position order
    mask = np.zeros(len(values), dtype=bool)
    mask[found] = True
    replacements = pa.concat_arrays(respelt).take(pa.array(order))
    return pc.replace_with_mask(tokens, pa.array(mask), replacements)
