"""The host driver of the board system (``hw/soc/system.py``).

``Board(transport)`` speaks the host link protocol of ``hw/soc/protocol.py`` (version 6):
``identify``, ``write``, ``read``, ``status``, ``requests`` (any list of requests,
pipelined) and ``matmul``, which runs any GEMM on the board's GEMM engine in blocks
(``host.gemm``) and returns exactly the bits of ``golden.matmul``. A
transport has ``write(bytes)`` and ``read(n, timeout) -> bytes`` (what came, fewer bytes
or none on timeout): ``SerialTransport`` for a real board, or the simulated board's socket
(``sim.board.simulated_board``).

How requests travel: the driver first learns the board's expected seq with SYNC (whose
answer echoes a random nonce, so a stale answer is never taken for it). Then up to
``window`` requests are in flight, each with the next seq; an answer is taken only if
its seq and command are those of a request in flight, anything else is dropped. An
answer to a later request means the answers to the earlier ones were lost: those are
sent again (the board answers a repeat from its history, or executes a pure one again).
``NAK SEQUENCE`` (a request was lost, so the ones after it are refused) or no answer for
``timeout`` seconds sends every unanswered request again, in order, from the oldest.
A pure request sent again is executed again, so it must not see the effect of a later
request: no state-changing request is sent while a pure one is unanswered, unless every
pure one unanswered is a READ whose bytes it cannot touch (``buffer_spans``: a WRITE's
bytes, a GEMM's sums and quantized codes), so that the next block's operands cross
toward the board while the previous block's results cross back. After ``retries`` recoveries without an answer in
between, or a NAK, ``BoardError``: never a silently wrong result.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Callable
from dataclasses import dataclass


from boards.targets import UART_BAUD
from fp8hw.enums import Dataflow
from fp8hw.uart import STANDARD_BAUDS
from host.errors import BoardError
from host.gemm import _lay, lane_codes, run_matmul
from hw.schedule import word_stride
from hw.soc.buffers import BufferId
from hw.soc.protocol import (ACK, ENGINES, HISTORY, MAX_PAYLOAD, NAK, PURE, RECEIVE_BANKS,
                             VERSION, WRITE_HEADER, Command, Nak, ReadView, encode_frame,
                             next_frame, unpack_gemm, unpack_identity, unpack_status)

WRITE_CHUNK = MAX_PAYLOAD - WRITE_HEADER    # data bytes of a WRITE frame
READ_CHUNK = MAX_PAYLOAD - 1        # data bytes of a READ answer (after the command)
BAUD_RANGE = (300, max(STANDARD_BAUDS))


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
        """What has come, up to ``n`` bytes, waiting at most ``timeout`` for the first."""
        self.port.timeout = timeout
        first = self.port.read(1)
        if not first:
            return b""
        return first + self.port.read(min(n - 1, self.port.in_waiting))


@dataclass(frozen=True)
class BoardInfo:
    version: int
    rows: int
    cols: int
    dataflow: str
    pipeline: int
    bias: int
    a_words: int
    b_words: int
    acc_words: int
    max_m: int
    max_k: int
    max_n: int
    chunking: int
    divisor: int
    clock_khz: int
    banks: int
    history: int
    max_payload: int
    engine: str             # "mpe" (HFP8 modes) or "seb" (the FP8-SEB engine)
    ways: int               # the FP8-SEB trees' ways (0 on the MPE engine)
    room: int               # the FP8-SEB output tracker's bias rule headroom

    @property
    def baud(self) -> int:
        """The link's rate (0 when the board does not know its clock, as in simulation)."""
        return round(self.clock_khz * 1000 / self.divisor) if self.divisor else 0


@dataclass
class _Request:
    index: int                  # in the caller's list
    seq: int
    command: int
    frame: bytes
    sent: int = 0               # when last sent (the driver's transmission count)
    payload: bytes = b""


def buffer_spans(command: int, payload: bytes, info) -> list[tuple[int, int, int]] | None:
    """The buffer bytes a request reads (READ) or writes (WRITE, GEMM), as (buffer, first,
    end) in host byte addresses; None for one that may see or change more than that (a
    GEMM before ``info`` is known or with settings the board refuses; STATUS reads the
    engine's counters and tracker, which a GEMM changes; IDENTIFY, SYNC)."""
    if command == Command.WRITE and len(payload) >= WRITE_HEADER:
        first = int.from_bytes(payload[1:5], "little")
        return [(payload[0], first, first + len(payload) - WRITE_HEADER)]
    if command == Command.READ and len(payload) >= 8:
        first, count = int.from_bytes(payload[1:5], "little"), int.from_bytes(payload[5:7],
                                                                              "little")
        if payload[7] == ReadView.LOW16:     # view byte a is buffer byte (a // 2) * 4 + a % 2
            return [(payload[0], first // 2 * 4, (first + count - 1) // 2 * 4 + 2)]
        return [(payload[0], first, first + count)]
    if command == Command.GEMM and info is not None:
        s = unpack_gemm(payload)
        try:
            L = _lay(info, s["m"], s["k"] * lane_codes(info), s["n"])
        except ValueError:
            return None
        acc, a = word_stride(4 * info.rows), word_stride(L.word_items)
        spans = [(BufferId.ACC, s["acc_base"] * acc, (s["acc_base"] + L.acc_words) * acc)]
        if s["out"]:
            spans.append((BufferId.A, s["out_base"] * a, (s["out_base"] + L.out_words) * a))
        return spans
    return None


def _apart(writes, reads) -> bool:
    """No byte of ``reads`` is in ``writes`` (both ``buffer_spans``; None is everything)."""
    if writes is None or reads is None:
        return False
    return not any(wb == rb and w0 < r1 and r0 < w1
                   for wb, w0, w1 in writes for rb, r0, r1 in reads)


@dataclass(frozen=True)
class LinkProgress:
    """A board's work so far, all told: requests answered, GEMM passes done (GEMM
    requests answered), and the bytes on the link both ways."""
    answered: int
    passes_done: int
    bytes_sent: int
    bytes_received: int

    def describe(self) -> str:
        return (f"{self.passes_done:,} GEMM passes done, {self.answered:,} requests "
                f"answered, {self.bytes_sent:,} bytes sent, {self.bytes_received:,} received")


class Board:
    """``timeout``: seconds without an answer before the requests in flight are sent
    again; ``retries``: recoveries in a row before ``BoardError``; ``window``: requests
    in flight (default the board's receive banks, ``protocol.RECEIVE_BANKS``: more would
    arrive while both banks are busy and be dropped)."""

    def __init__(self, transport, timeout: float = 1.0, retries: int = 6,
                 window: int = RECEIVE_BANKS):
        if not 1 <= window <= HISTORY:
            raise ValueError(f"window must be in 1..{HISTORY} (the board's history), "
                             f"got {window}")
        self.transport, self.timeout, self.retries = transport, timeout, retries
        self.window = window
        self.pending = b""          # bytes received, not ended by a delimiter yet
        self.seq = None             # the next seq; None until SYNC
        self.sent = 0               # transmissions so far
        self.recoveries = 0         # requests sent again, all told (for tests and logs)
        self.bytes_sent = 0         # on the link, both ways, all told
        self.bytes_received = 0
        self.answered = 0           # requests answered, and GEMM requests, all told
        self.passes_done = 0
        # Called with a ``LinkProgress`` after each answer (None: no one is told).
        self.progress: Callable[[LinkProgress], None] | None = None
        self._info = None

    # The link. ---------------------------------------------------------------------

    def _answer(self, deadline: float):
        """The next good frame received before ``deadline``: (seq, code, payload), or None."""
        while True:
            frame, self.pending = next_frame(self.pending)
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.transport.read(1 << 16, min(left, 0.5))
            self.bytes_received += len(data)
            self.pending += data

    def _send(self, requests) -> None:
        data = b""
        for r in requests:
            self.sent += 1
            r.sent = self.sent
            # A delimiter first ends whatever came before (garbage, a frame cut short).
            data += b"\x00" + r.frame
        self.bytes_sent += len(data)
        self.transport.write(data)

    def sync(self) -> int:
        """Learn the board's expected seq (SYNC, with a nonce its answer must echo)."""
        nonce = os.urandom(4)
        frame = b"\x00" + encode_frame(nonce[0], Command.SYNC, nonce)
        for _ in range(self.retries + 1):
            self.transport.write(frame)
            deadline = time.monotonic() + self.timeout
            while (answer := self._answer(deadline)) is not None:
                seq, code, data = answer
                if code == ACK and data[:1] == bytes([Command.SYNC]) and data[2:] == nonce:
                    self.seq = data[1]
                    return self.seq
            self.pending = b""
        raise BoardError(f"no answer to SYNC after {self.retries + 1} tries")

    def requests(self, items) -> list[bytes]:
        """Execute ``items`` (command, payload) in order, pipelined; each one's ACK data."""
        if self.seq is None:
            self.sync()
        items = list(items)
        out = [None] * len(items)
        flight = collections.deque()            # unanswered, oldest first
        following = 0                           # the next item to send
        strikes = 0
        recovering = None                       # the seq whose answer ends a go-back
        deadline = time.monotonic() + self.timeout

        def resend(requests):
            self.recoveries += len(requests)
            self._send(requests)

        while following < len(items) or flight:
            batch = []
            while following < len(items) and len(flight) < self.window:
                command, payload = items[following]
                if command not in PURE and not self._beside(command, payload, flight):
                    break                       # it could change what a pure one sees
                r = _Request(following, self.seq, command,
                             encode_frame(self.seq, command, payload), payload=payload)
                self.seq = (self.seq + 1) & 0xFF
                flight.append(r)
                batch.append(r)
                following += 1
            if batch:
                self._send(batch)
            answer = self._answer(deadline)
            if answer is None:                  # nothing for `timeout`: all again
                strikes += 1
                if strikes > self.retries:
                    raise BoardError(f"no answer to {Command(flight[0].command).name} "
                                     f"after {self.retries + 1} tries")
                self.pending = b""
                resend(flight)
                recovering = flight[0].seq
                deadline = time.monotonic() + self.timeout
                continue
            seq, code, data = answer
            r = next((r for r in flight if r.seq == seq), None)
            if r is None or data[:1] != bytes([r.command]) or code not in (ACK, NAK):
                continue                        # not an answer to a request in flight
            if code == NAK and data[1:2] == bytes([Nak.SEQUENCE]):
                if recovering is not None and seq != recovering:
                    continue                    # refused before the go-back was sent
                expected = data[2] if len(data) > 2 else None
                if expected not in [f.seq for f in flight]:
                    raise BoardError(f"the board expects seq {expected}, which this driver "
                                     f"never sent (was the board reset?)")
                strikes += 1
                if strikes > self.retries:
                    raise BoardError(f"no good answer to {Command(flight[0].command).name} "
                                     f"after {self.retries + 1} tries")
                resend(flight)
                recovering = flight[0].seq
                deadline = time.monotonic() + self.timeout
                continue
            if seq == recovering:
                recovering = None
            flight.remove(r)
            # Answers come in the order of the transmissions: a request sent before this
            # answer's request and still unanswered has lost its answer. Ask again.
            lost = [e for e in flight if e.sent < r.sent]
            if lost:
                resend(lost)
            strikes = 0
            deadline = time.monotonic() + self.timeout
            if code == NAK:
                reason = Nak(data[1]).name if len(data) > 1 and data[1] in tuple(Nak) \
                    else f"reason {data[1:2].hex()}"
                raise BoardError(f"board refused {Command(r.command).name}: {reason}")
            out[r.index] = data[1:]
            self.answered += 1
            self.passes_done += r.command == Command.GEMM
            if self.progress is not None:
                self.progress(self.link_progress())
        return out

    def _beside(self, command, payload, flight) -> bool:
        """May state-changing ``command`` go while ``flight`` is unanswered? Only past
        READs whose bytes it cannot touch: a pure request sent again (its answer lost) is
        executed again and must see what it saw the first time."""
        pure = [r for r in flight if r.command in PURE]
        if not pure:
            return True
        writes = buffer_spans(command, payload, self._info)
        return all(r.command == Command.READ
                   and _apart(writes, buffer_spans(r.command, r.payload, self._info))
                   for r in pure)

    def link_progress(self) -> LinkProgress:
        return LinkProgress(self.answered, self.passes_done, self.bytes_sent,
                            self.bytes_received)

    def request(self, command: int, payload: bytes = b"") -> bytes:
        """One request; the data of its ACK."""
        return self.requests([(command, payload)])[0]

    # Commands. ----------------------------------------------------------------------

    def identify(self) -> BoardInfo:
        d = unpack_identity(self.request(Command.IDENTIFY))
        if d["version"] != VERSION:
            raise BoardError(f"the board speaks protocol version {d['version']}, this "
                             f"driver {VERSION}")
        if d["dataflow"] not in tuple(Dataflow):
            raise BoardError(f"the board reports an unknown dataflow code {d['dataflow']}")
        d["dataflow"] = Dataflow(d["dataflow"]).label
        if d["engine"] >= len(ENGINES):
            raise BoardError(f"the board reports an unknown engine code {d['engine']}")
        d["engine"] = ENGINES[d["engine"]]
        self._info = BoardInfo(**d)
        return self._info

    @property
    def info(self) -> BoardInfo:
        return self._info or self.identify()

    @staticmethod
    def write_requests(buffer: int, address: int, data: bytes):
        return [(Command.WRITE, bytes([buffer]) + (address + start).to_bytes(4, "little")
                 + data[start:start + WRITE_CHUNK]) for start in range(0, len(data), WRITE_CHUNK)]

    @staticmethod
    def read_requests(buffer: int, address: int, count: int, view: int = ReadView.BYTES,
                      chunk: int = READ_CHUNK):
        """READs of ``count`` bytes, ``chunk`` bytes an answer at most."""
        return [(Command.READ, bytes([buffer]) + (address + start).to_bytes(4, "little")
                 + min(chunk, count - start).to_bytes(2, "little") + bytes([view]))
                for start in range(0, count, chunk)]

    def write(self, buffer: int, address: int, data: bytes) -> None:
        self.requests(self.write_requests(buffer, address, data))

    def read(self, buffer: int, address: int, count: int, view: int = ReadView.BYTES) -> bytes:
        return b"".join(self.requests(self.read_requests(buffer, address, count, view)))

    def status(self) -> dict[str, int]:
        return unpack_status(self.request(Command.STATUS))

    def matmul(self, A, B, C=None, mode="fp8", fmt_a="e4m3", fmt_b="e4m3", chunk=0,
               out="none", *, bias_a=0, bias_b=0, out_bias=None, keep=False, sums=False):
        """``golden.matmul`` on the board, bit for bit, or in mode ``fp8seb`` (a board with
        the FP8-SEB engine) ``golden.seb_matmul``, returned as its ``SebMatmul`` (with
        ``out_bias``: Y, max_exp and next_bias over the whole output; C too with
        ``sums``); see ``host.gemm.run_matmul``."""
        return run_matmul(self, A, B, C, mode, fmt_a, fmt_b, chunk, out, bias_a=bias_a,
                          bias_b=bias_b, out_bias=out_bias, keep=keep, sums=sums)
