"""gzip layers as an unpack reads them: decompressed by zlib itself, members one after the
other, each one's trailer checked, in reads of any size."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from supervisor.images import layers
from supervisor.images.digest import Readable

DATA = bytes(range(256)) * 400


def read_all(stream: Readable, size: int) -> bytes:
    out = bytearray()
    while chunk := stream.read(size):
        out += chunk
    return bytes(out)


@pytest.mark.parametrize("size", [1, 511, 4096, 1 << 20, -1])
def test_gzip_of_one_and_of_several_members(size: int) -> None:
    one = gzip.compress(DATA)
    assert read_all(layers.decompressed(io.BytesIO(one)), size) == DATA
    several = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:])
    assert read_all(layers.decompressed(io.BytesIO(several)), size) == DATA


def test_truncated_or_corrupt_gzip_is_an_error() -> None:
    whole = gzip.compress(DATA)
    with pytest.raises(EOFError, match="compressed data ended"):
        read_all(layers.decompressed(io.BytesIO(whole[:-20])), 4096)
    corrupt = bytearray(whole)
    corrupt[-8] ^= 0xFF  # the trailer's CRC
    with pytest.raises(zlib.error):
        read_all(layers.decompressed(io.BytesIO(bytes(corrupt))), 4096)
