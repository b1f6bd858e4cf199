"""The host driver of the board system (``hw/soc/system.py``).

``Board(transport)`` speaks the framed protocol of ``hw/soc/protocol.py``: ``identify``,
``write``, ``read``, ``run``, ``status``, and ``matmul``, which tiles any GEMM onto the
board's weight-stationary array with ``hw.schedule.GemmSchedule`` and returns exactly the
bits of ``golden.matmul``. A transport has ``write(bytes)`` and ``read(n, timeout) ->
bytes`` (fewer bytes on timeout): ``SerialTransport`` for a real board, or the simulated
board's socket (``sim.board.simulated_board``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from boards.targets import UART_BAUD
from fp8hw.enums import Dataflow, Mode, SourceFormat
from fp8hw.errors import Fp8hwError
from hw.schedule import GemmSchedule
from hw.soc.protocol import (ACK, NAK, STATUS_COUNTERS, Buffer, Command, FrameError, Nak,
                             buffer_image, decode_frame, encode_frame, from_buffer_image,
                             image_row_bytes)

CHUNK = 512                  # bytes per WRITE or READ frame
# The rates a USB serial adapter can run at; the boards' UART runs at 115200.
BAUD_RANGE = (300, 12_000_000)


class BoardError(Fp8hwError):
    """The board refused a request or stopped answering; the message says which."""


class SerialTransport:
    def __init__(self, port: str, baud: int = UART_BAUD):
        import serial
        lo, hi = BAUD_RANGE
        if isinstance(baud, bool) or not isinstance(baud, int) or not lo <= baud <= hi:
            raise BoardError(f"baud rate must be an integer in {lo}..{hi}, got {baud!r}")
        try:
            self.port = serial.Serial(port, baud, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as e:
            raise BoardError(f"cannot open serial port {port}: {e}") from None

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        self.port.timeout = timeout
        return self.port.read(n)


@dataclass(frozen=True)
class BoardInfo:
    version: int
    rows: int
    cols: int
    dataflow: str
    pipeline: int
    bias: int
    max_m: int
    buffer_sizes: tuple[int, int, int]


class Board:
    def __init__(self, transport, timeout: float = 10.0, retries: int = 3):
        self.transport, self.timeout, self.retries = transport, timeout, retries
        self.pending = b""
        self._info = None

    def _answer(self) -> tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                command, payload, self.pending = decode_frame(self.pending)
                return command, payload
            except IndexError:
                pass
            except FrameError:
                self.pending = self.pending[1:]          # resynchronize on the next SOF
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.pending += self.transport.read(4096, min(left, 0.5))

    def resync(self, quiet: float = 0.3) -> None:
        """Discard whatever the board still sends until the line is quiet for ``quiet`` s
        (answers to garbage, or to a frame given up on)."""
        self.pending = b""
        while self.transport.read(4096, quiet):
            pass

    def request(self, command: int, payload: bytes = b"") -> bytes:
        """Send a frame and return the data of its ACK; after a NAK for a damaged or cut
        frame, an answer to something else, or no answer, resynchronize and try again."""
        for attempt in range(self.retries + 1):
            if attempt:
                self.resync()
            self.pending = b""
            self.transport.write(encode_frame(command, payload))
            try:
                answer, data = self._answer()
            except TimeoutError:
                continue
            if answer == ACK and data[:1] == bytes([command]):
                return data[1:]
            if answer == ACK or (answer == NAK and data[:1] in (bytes([Nak.CRC]),
                                                               bytes([Nak.TIMEOUT]))):
                continue
            reason = Nak(data[0]).name if answer == NAK and data else f"answer {answer}"
            raise BoardError(f"board refused {Command(command).name}: {reason}")
        raise BoardError(f"no good answer to {Command(command).name} after "
                         f"{self.retries + 1} tries")

    def identify(self) -> BoardInfo:
        d = self.request(Command.IDENTIFY)
        sizes = tuple(int.from_bytes(d[i:i + 2], "little") for i in range(6, 14, 2))
        if d[3] not in tuple(Dataflow):
            raise BoardError(f"the board reports an unknown dataflow code {d[3]}")
        self._info = BoardInfo(d[0], d[1], d[2], Dataflow(d[3]).label, d[4], d[5],
                               sizes[0], sizes[1:])
        return self._info

    @property
    def info(self) -> BoardInfo:
        return self._info or self.identify()

    def write(self, buffer: int, address: int, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            self.request(Command.WRITE, bytes([buffer]) + (address + start).to_bytes(2, "little")
                         + data[start:start + CHUNK])

    def read(self, buffer: int, address: int, count: int) -> bytes:
        out = b""
        for start in range(0, count, CHUNK):
            n = min(CHUNK, count - start)
            out += self.request(Command.READ, bytes([buffer])
                                + (address + start).to_bytes(2, "little")
                                + n.to_bytes(2, "little"))
        return out

    def status(self) -> dict[str, int]:
        d = self.request(Command.STATUS)
        return {n: int.from_bytes(d[2 * i:2 * i + 2], "little")
                for i, n in enumerate(STATUS_COUNTERS)}

    def matmul(self, A, B, C=None, mode="fp8", fmt_a="e4m3", fmt_b="e4m3") -> np.ndarray:
        """C = A x B (+ C) on the board, bit for bit ``golden.matmul``."""
        try:
            codes = [Mode.from_label(mode), SourceFormat.from_label(fmt_a),
                     SourceFormat.from_label(fmt_b)]
        except ValueError as e:
            raise BoardError(str(e)) from None
        A, B = np.asarray(A, np.uint8), np.asarray(B, np.uint8)
        M, K = A.shape
        N = B.shape[1]
        info = self.info
        R, Cn = info.rows, info.cols
        out = np.zeros((M, N), np.uint32) if C is None else np.array(C, np.uint32)
        for m0 in range(0, M, info.max_m):             # rows are independent
            rows = slice(m0, min(m0 + info.max_m, M))
            part = out[rows]
            s = GemmSchedule(part.shape[0], K, N, R, Cn, Dataflow.WS.label)
            for tile in s.tiles:
                b, active = s.ws_weights(tile, B)
                a, c = s.ws_operands(tile, A[rows], part)
                self.write(Buffer.B, 0, buffer_image(b, "u1"))
                self.write(Buffer.A, 0, buffer_image(a, "u1"))
                self.write(Buffer.C, 0, buffer_image(c, "<u4"))
                self.request(Command.RUN, bytes([*codes, int(active.sum())])
                             + part.shape[0].to_bytes(2, "little"))
                result = self.read(Buffer.C, 0, part.shape[0] * image_row_bytes(Cn, "<u4"))
                s.store(tile, part, from_buffer_image(result, Cn, "<u4"))
            out[rows] = part
        return out
