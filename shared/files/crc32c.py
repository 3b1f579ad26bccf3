"""CRC-32C (Castagnoli), the checksum TensorFlow's checkpoints carry, in NumPy.

``zlib.crc32`` is another polynomial, and no CRC-32C package comes with the
project's dependencies.  A byte at a time in Python is far too slow for a
checkpoint of hundreds of megabytes, so the bytes are cut into K lanes that
advance together, one NumPy step per byte position, and the lanes' checksums
are joined afterwards.  A CRC is linear over GF(2), which is what makes the
joining exact:

    crc0(A + B) = shift(crc0(A), len(B)) ^ crc0(B)       (registers started at 0)
    crc(M)      = ~(crc0(M) ^ shift(0xFFFFFFFF, len(M)))  (the standard start and end)

where ``shift(x, n)`` runs the register x over n zero bytes, a 32 x 32 matrix
over GF(2) raised to the n-th power by squaring.  ``masked`` is TensorFlow's
and LevelDB's storage form of a checksum.

Example:

    crc32c(b"123456789") == 0xE3069283   # the polynomial's check value
"""

from __future__ import annotations

from functools import cache

import numpy as np

POLYNOMIAL = 0x82F63B78  # reflected Castagnoli polynomial
MASK_DELTA = 0xA282EAD8
LANES = 4096


@cache
def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(POLYNOMIAL), table >> 1)
    return table.astype(np.uint32)


def _python_crc0(data, register: int = 0) -> int:
    table = _table().tolist()
    for byte in bytes(data):
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


# ---- the register's linear map over zero bytes, as 32 column vectors ----

def _apply(matrix: tuple[int, ...], vector: int) -> int:
    result, bit = 0, 0
    while vector:
        if vector & 1:
            result ^= matrix[bit]
        vector >>= 1
        bit += 1
    return result


def _multiply(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The matrix of ``a`` after ``b``."""
    return tuple(_apply(a, column) for column in b)


@cache
def _zero_byte() -> tuple[int, ...]:
    return tuple(_python_crc0(b"\x00", 1 << bit) for bit in range(32))


def _shift_matrix(count: int) -> tuple[int, ...]:
    result = tuple(1 << bit for bit in range(32))  # identity
    power = _zero_byte()
    while count:
        if count & 1:
            result = _multiply(power, result)
        power = _multiply(power, power)
        count >>= 1
    return result


def _byte_tables(matrix: tuple[int, ...]) -> list[list[int]]:
    """The matrix as four 256-entry tables, one per byte of the register."""
    return [[_apply(matrix, value << (8 * j)) for value in range(256)] for j in range(4)]


def crc32c(data) -> int:
    """The CRC-32C of ``data`` (bytes, bytearray, memoryview or a uint8 array)."""
    view = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    size = view.size
    lanes = min(LANES, size // 64)
    if lanes < 2:
        register = _python_crc0(view.tobytes())
    else:
        length = size // lanes
        block = view[: lanes * length].reshape(lanes, length)
        table = _table()
        registers = np.zeros(lanes, dtype=np.uint32)
        for column in range(length):
            registers = table[(registers ^ block[:, column]) & 0xFF] ^ (registers >> 8)
        tables = _byte_tables(_shift_matrix(length))
        register = 0
        for lane in registers.tolist():  # Horner: register = shift(register, length) ^ lane
            register = (tables[0][register & 0xFF] ^ tables[1][(register >> 8) & 0xFF]
                        ^ tables[2][(register >> 16) & 0xFF] ^ tables[3][register >> 24]) ^ lane
        tail = view[lanes * length :].tobytes()
        register = _apply(_shift_matrix(len(tail)), register) ^ _python_crc0(tail)
    start = _apply(_shift_matrix(size), 0xFFFFFFFF)
    return ~(register ^ start) & 0xFFFFFFFF


def masked(crc: int) -> int:
    """TensorFlow's (and LevelDB's) stored form: rotated right by 15 bits, plus a constant."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF
