"""A transport that damages the host link on purpose, seeded: it wraps any transport
(``write(bytes)``, ``read(n, timeout)``) and injects the faults a serial line can have,
frame by frame, counting each kind it injected (``FaultyTransport.injected``).

Requests (host to board): lost, cut short, one bit flipped in a chosen field (seq, code,
payload, CRC, a COBS code byte), a burst of garbage before it. Answers (board to host):
lost, one bit flipped, sent twice. Kinds are taken in turn from a shuffled cycle, so
that a run of a few hundred frames injects each of them."""

from __future__ import annotations

import collections
import random

from hw.soc.protocol import (CRC_BYTES, DELIMITER, HEADER_BYTES, Command, FrameError,
                             decode_frame)

REQUEST_FAULTS = ("request lost", "request cut", "bit in seq", "bit in code", "bit in payload",
                  "bit in CRC", "bit in COBS code", "garbage burst")
ANSWER_FAULTS = ("answer lost", "answer damaged", "answer duplicated")


def cobs_layout(line: bytes) -> tuple[list[int], list[int]]:
    """For a COBS-encoded frame (without its delimiter): the line position carrying each
    body byte (a 0x00 of the body is carried by the code byte of the block after it,
    which says where the 0x00 is), and the positions of the code bytes."""
    carriers, codes = [], []
    at = 0
    while at < len(line):
        code = line[at]
        codes.append(at)
        carriers += range(at + 1, at + code)
        at += code
        if code != 0xFF and at < len(line):
            carriers.append(at)             # the next code byte stands for this 0x00
    return carriers, codes


class FaultyTransport:
    """``inner`` with a fault on about ``rate`` of the request frames and of the answer
    frames (``answer_rates``: a rate per answered command name instead, e.g. more for
    RUN). ``enabled`` is False to pass everything through (say, while checking the
    result)."""

    def __init__(self, inner, seed: int, rate: float = 0.1, answer_rates=None):
        self.inner, self.rate = inner, rate
        self.answer_rates = answer_rates or {}
        self.rng = random.Random(seed)
        self.injected = collections.Counter()
        self.enabled = True
        self._received = b""                # answer bytes not ended by a delimiter yet
        self._ready = b""                   # answer bytes to hand to the driver
        self._cycles = {}

    def _next(self, kinds):
        cycle = self._cycles.setdefault(kinds, [])
        if not cycle:
            cycle += self.rng.sample(kinds, len(kinds))
        return cycle.pop()

    def _flip(self, line: bytearray, position: int) -> None:
        line[position] ^= 1 << self.rng.randrange(8)

    # Requests. -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        out = bytearray()
        for frame in bytes(data).split(bytes([DELIMITER])):
            if frame:
                out += self._request(frame)
            out.append(DELIMITER)
        self.inner.write(bytes(out[:-1]))        # the split added one delimiter too many

    def _request(self, frame: bytes) -> bytes:
        if not self.enabled or self.rng.random() >= self.rate:
            return frame
        kind = self._next(REQUEST_FAULTS)
        line = bytearray(frame)
        carriers, codes = cobs_layout(frame)
        payload_end = len(carriers) - CRC_BYTES
        if kind == "request lost":
            line = bytearray()
        elif kind == "request cut":
            line = line[:self.rng.randrange(1, len(line))]
        elif kind == "garbage burst":
            line = bytearray(self.rng.randbytes(self.rng.randrange(1, 40))) + b"\x00" + line
        elif kind == "bit in payload" and payload_end <= HEADER_BYTES:
            return frame                        # no payload here: no fault either
        else:
            position = {"bit in seq": lambda: carriers[0],
                        "bit in code": lambda: carriers[1],
                        "bit in payload": lambda: carriers[self.rng.randrange(HEADER_BYTES,
                                                                             payload_end)],
                        "bit in CRC": lambda: carriers[self.rng.randrange(payload_end,
                                                                         len(carriers))],
                        "bit in COBS code": lambda: self.rng.choice(codes)}[kind]()
            self._flip(line, position)
        self.injected[kind] += 1
        return bytes(line)

    # Answers. ------------------------------------------------------------------------

    def read(self, n: int, timeout: float) -> bytes:
        if not self._ready:
            self._received += self.inner.read(n, timeout)
            *frames, self._received = self._received.split(bytes([DELIMITER]))
            for frame in frames:
                self._ready += self._answer(frame)
        out, self._ready = self._ready[:n], self._ready[n:]
        return out

    def _answer(self, frame: bytes) -> bytes:
        whole = frame + bytes([DELIMITER])
        if not frame or not self.enabled:
            return whole
        try:
            _, _, payload = decode_frame(frame)
            name = Command(payload[0]).name if payload and payload[0] in tuple(Command) \
                else "other"
        except FrameError:
            name = "other"
        if self.rng.random() >= self.answer_rates.get(name, self.rate):
            return whole
        kind = self._next(ANSWER_FAULTS)
        self.injected[f"{kind} ({name})"] += 1
        if kind == "answer lost":
            return b""
        if kind == "answer duplicated":
            return whole + whole
        line = bytearray(frame)
        self._flip(line, self.rng.randrange(len(line)))
        return bytes(line) + bytes([DELIMITER])

    def close(self) -> None:
        self.inner.close()

    def table(self) -> str:
        """The faults injected, one kind a line."""
        width = max((len(k) for k in self.injected), default=10)
        return "\n".join(f"{kind:<{width}}  {count:4d}"
                         for kind, count in sorted(self.injected.items()))
