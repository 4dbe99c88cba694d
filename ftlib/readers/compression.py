"""Opening an input as plain bytes whatever its compression (gzip, zstd), streaming.

pyarrow's compressed streams do the decompression (pyarrow is already a dependency; Python 3.11 has no zstd).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import pyarrow as pa

from ftlib.readers.files import Compression

BUFFER = 1 << 18  # a truncated stream loses at most this much decompressed text before the error
# What a corrupt or truncated compressed stream raises while being read.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, pa.ArrowException)


def open_binary(path: Path, compression: Compression) -> IO[bytes]:
    if compression is None:
        return path.open("rb")
    return io.BufferedReader(pa.input_stream(str(path), compression=compression), BUFFER)
