"""The training text of dataset rows as word n-gram hashes, computed column-wise on Arrow record batches.

Near-duplicate detection and leakage checks compare what a model learns from: user, assistant and tool text,
tool-call names and arguments, preference replies. System prompts are left out (one shared prompt would make
every example look alike), and so are ids, sources and metadata. Text is lower-cased and split on whitespace,
with punctuation trimmed from each word; n-grams never cross a message boundary, and a message shorter than n
words counts as one n-gram of all its words. Everything is vectorised over a whole batch: no Python object per
message or word, so the cost per example is a few microseconds.
"""

from __future__ import annotations

import hashlib
import string

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PUNCTUATION = string.punctuation + "“”‘’«»…—–¿¡"
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for the polynomial n-gram hash
_MASK32 = np.uint64(0xFFFFFFFF)


def _struct_texts(sa: pa.Array, rows: pa.Array, with_attachments: bool) -> tuple[list[pa.Array], list[pa.Array]]:
    """Text pieces of a struct array of messages and the dataset row of each piece."""
    texts: list[pa.Array] = []
    owners: list[pa.Array] = []
    if not len(sa):
        return texts, owners
    valid = pc.is_valid(sa)
    not_system = pc.and_(valid, pc.fill_null(pc.not_equal(pc.struct_field(sa, "role"), "system"), False))
    texts.append(pc.filter(pc.struct_field(sa, "content"), not_system))
    owners.append(pc.filter(rows, not_system))
    calls = pc.struct_field(sa, "tool_calls")
    if pc.sum(pc.list_value_length(calls)).as_py():
        flat = pc.list_flatten(calls)
        parents = pc.take(rows, pc.list_parent_indices(calls))
        texts.append(pc.binary_join_element_wise(pc.struct_field(flat, "name"), pc.struct_field(flat, "arguments"),
                                                 " "))
        owners.append(parents)
    if with_attachments:
        atts = pc.struct_field(sa, "attachments")
        if pc.sum(pc.list_value_length(atts)).as_py():
            flat = pc.list_flatten(atts)
            # An attachment is one "word" (its sha256), so two chats that differ only by their image differ.
            texts.append(pc.binary_join_element_wise("attachment", pc.struct_field(flat, "sha256"), ":"))
            owners.append(pc.take(rows, pc.list_parent_indices(atts)))
    return texts, owners


def text_pieces(batch: pa.RecordBatch, with_attachments: bool = False) -> tuple[pa.Array, np.ndarray]:
    """(text per piece, row of each piece in the batch): non-system message contents, tool calls, replies."""
    n = batch.num_rows
    texts: list[pa.Array] = []
    owners: list[pa.Array] = []
    msgs = batch.column("messages")
    flat = pc.list_flatten(msgs)
    t, o = _struct_texts(flat, pc.list_parent_indices(msgs), with_attachments)
    texts += t
    owners += o
    rows = pa.array(np.arange(n, dtype=np.int64))
    for name in ("chosen", "rejected"):
        col = batch.column(name)
        if col.null_count < n:
            t, o = _struct_texts(col, rows, with_attachments)
            texts += t
            owners += o
    if not texts:
        return pa.array([], pa.string()), np.zeros(0, np.int64)
    text = pa.concat_arrays([pc.cast(t, pa.string()) for t in texts])
    owner = np.concatenate([np.asarray(pc.cast(o, pa.int64())) for o in owners])
    return pc.fill_null(text, ""), owner


def _word_hashes(words: pa.Array) -> np.ndarray:
    """A stable 64-bit hash per word (blake2b, so every process and machine agrees), one Python call per
    distinct word of the batch rather than per word."""
    if not len(words):
        return np.zeros(0, np.uint64)
    encoded = pc.dictionary_encode(words)
    vocab = encoded.dictionary.to_pylist()
    blake = hashlib.blake2b
    table = np.frombuffer(b"".join(blake(w.encode(), digest_size=8).digest() for w in vocab), dtype="<u8")
    return table[np.asarray(encoded.indices)]


def ngram_hashes(text: pa.Array, owner: np.ndarray, n: int, by_row: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hash per word n-gram, row it belongs to); with by_row, rows ascending (stable within a row).

    Each piece of text is split into words; an n-gram never spans two pieces; a piece with 1..n-1 words
    gives one shorter gram; a piece with no words gives none.
    """
    split = pc.utf8_split_whitespace(pc.utf8_lower(text))
    # A word of punctuation only ("—") trims to "" and stays a word: cheaper than filtering, and consistent.
    w = _word_hashes(pc.utf8_trim(pc.list_flatten(split), characters=_PUNCTUATION))
    piece = np.asarray(pc.list_parent_indices(split))
    m = len(w)
    if not m:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, piece[1:] != piece[:-1]])
    lengths = np.diff(np.r_[starts, m])
    # Full n-grams: every word position with n words left in its piece (computed on those positions only).
    seg_end = np.repeat(starts + lengths, lengths)
    at = np.flatnonzero(np.arange(m) + n <= seg_end)
    full = w[at]
    for j in range(1, n):
        full = full * _MULT + w[at + j]
    # Pieces shorter than n words: one gram of all their words.
    short = lengths < n
    s_at, s_len = starts[short], lengths[short]
    part = np.zeros(len(s_at), np.uint64)
    for j in range(n - 1):
        inside = j < s_len
        part = np.where(inside, part * _MULT + w[np.minimum(s_at + j, m - 1)], part)
    grams = np.concatenate([full, part])
    rows = owner[piece[np.concatenate([at, s_at])]]
    if not by_row:
        return grams, rows
    order = np.argsort(rows, kind="stable")
    return grams[order], rows[order]


def fold32(hashes: np.ndarray) -> np.ndarray:
    """64-bit hashes folded to 32 bits (the input width of datasketch's default MinHash scheme)."""
    return (hashes ^ (hashes >> np.uint64(32))) & _MASK32


def row_bounds(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Offsets into row-sorted arrays: the items of row r are [bounds[r], bounds[r + 1])."""
    return np.searchsorted(rows, np.arange(n_rows + 1))


def char_lengths(batch: pa.RecordBatch) -> np.ndarray:
    """Characters of every message's content, thinking and tool-call arguments per row (system included):
    the text a model reads, for length estimates."""
    n = batch.num_rows
    total = np.zeros(n, np.int64)

    def add(sa: pa.Array, rows: np.ndarray) -> None:
        if not len(sa):
            return
        for fld in ("content", "thinking"):
            lengths = np.asarray(pc.fill_null(pc.utf8_length(pc.struct_field(sa, fld)), 0), dtype=np.int64)
            np.add.at(total, rows, lengths)
        calls = pc.struct_field(sa, "tool_calls")
        if pc.sum(pc.list_value_length(calls)).as_py():
            flat = pc.list_flatten(calls)
            lengths = np.asarray(pc.fill_null(pc.utf8_length(pc.struct_field(flat, "arguments")), 0), np.int64)
            np.add.at(total, rows[np.asarray(pc.list_parent_indices(calls))], lengths)

    msgs = batch.column("messages")
    add(pc.list_flatten(msgs), np.asarray(pc.list_parent_indices(msgs)))
    rows = np.arange(n)
    for name in ("chosen", "rejected"):
        col = batch.column(name)
        if col.null_count < n:
            valid = np.asarray(pc.is_valid(col))
            add(col.filter(pa.array(valid)), rows[valid])
    return total


def assistant_turns(batch: pa.RecordBatch) -> np.ndarray:
    """Assistant replies per row (a preference pair counts as one), as Dataset.summary counts turns."""
    n = batch.num_rows
    msgs = batch.column("messages")
    is_assistant = np.asarray(pc.fill_null(pc.equal(pc.struct_field(pc.list_flatten(msgs), "role"), "assistant"),
                                           False))
    turns = np.bincount(np.asarray(pc.list_parent_indices(msgs))[is_assistant], minlength=n)
    return turns + np.asarray(pc.is_valid(batch.column("chosen")), dtype=np.int64)
