"""A board in Python for the driver's tests: ``host.driver.Board`` whose requests go to a
model of the command executor and the GEMM engine instead of a link.

The model keeps the buffers as the host port sees them (``hw.soc.gemm``'s docstring:
words in a power-of-2 stride, the LOW16 view of ACC) and runs each GEMM by the engine's
contract: it reads A, B and the initial C at the settings' word offsets, computes them
with the golden model, and writes the sums to ACC and the quantized codes to A. It is
stricter than the board where the driver must not care: the lanes and bytes of a result
word past N get junk, and a request the executor would refuse, or that reaches past a
buffer, raises. Requests run one after the other, which is what the protocol promises a
pipelined batch sees. Runs in milliseconds, so the driver's block planning, layouts and
on-chip tensors can be checked over many shapes and buffer sizes in the quick tier.

``LossyLink`` puts the protocol's link layer in front of a ``ModelBoard`` (seqs, the
answer history, pure repeats executed again, NAK SEQUENCE, SYNC) and loses frames both
ways at random: a transport for an unmodified ``Board``, to check its recovery and when
it lets a state-changing request pass an unanswered READ.
"""

from __future__ import annotations

import numpy as np

from fp8hw.enums import Dataflow, GemmMode, OutFormat, SourceFormat
from golden import matmul
from golden.quant30 import next_bias
from golden.seb_matmul import seb_matmul
from hw.schedule import EngineLayout, word_stride
from hw.soc.buffers import BufferId
from hw.soc.protocol import (ACK, ENGINES, HISTORY, MAX_PAYLOAD, NAK, PURE, READ_ARGUMENTS,
                             RECEIVE_BANKS, STATUS_COUNTERS, VERSION, WRITE_HEADER, Command,
                             Nak, ReadView, decode_frame, encode_frame, pack_identity,
                             split_frames, unpack_gemm)
from host.driver import Board, BoardInfo

JUNK = 0xA5


class ModelError(AssertionError):
    """The driver asked for something the board would refuse or do differently."""


class ModelBoard(Board):
    """A board of an R x R array (``engine`` "mpe" or "seb" with ``ways``) and buffers of
    ``a_words``, ``b_words`` and ``acc_words`` words. ``gemms`` counts the GEMMs run."""

    def __init__(self, rows: int, a_words: int, b_words: int, acc_words: int,
                 engine: str = "mpe", ways: int = 1, chunking: int = 1, bias: int = 11,
                 room: int = 1, pipeline: int = 1):
        super().__init__(transport=None)
        seb = engine == "seb"
        self.R, self.W = rows, ways if seb else 1
        self._info = BoardInfo(
            version=VERSION, rows=rows, cols=rows, dataflow="ws", pipeline=pipeline,
            bias=0 if seb else bias, a_words=a_words, b_words=b_words, acc_words=acc_words,
            max_m=65535, max_k=65535, max_n=65535, chunking=0 if seb else chunking,
            divisor=0, clock_khz=0, banks=RECEIVE_BANKS, history=HISTORY,
            max_payload=MAX_PAYLOAD, engine=engine,
            ways=ways if seb else 0, room=room)
        word = self.R * self.W
        self.memory = {BufferId.A: np.zeros((a_words, word), np.uint8),
                       BufferId.B: np.zeros((b_words, word), np.uint8),
                       BufferId.ACC: np.zeros((acc_words, rows), np.uint32)}
        self.gemms = 0
        self._tracker = (None, 0)               # (max_exp or None, next_bias)

    # The link: each request straight to the model. ------------------------------------

    def requests(self, items) -> list[bytes]:
        answers = []
        for command, payload in items:
            answers.append(self._execute(command, bytes(payload)))
            self.answered += 1
        return answers

    def _execute(self, command, payload: bytes) -> bytes:
        if command == Command.WRITE:
            buffer, address = payload[0], int.from_bytes(payload[1:5], "little")
            self._write(BufferId(buffer), address, payload[WRITE_HEADER:])
            return b""
        if command == Command.READ:
            if len(payload) != READ_ARGUMENTS:
                raise ModelError(f"READ with {len(payload)} argument bytes")
            buffer, address = payload[0], int.from_bytes(payload[1:5], "little")
            count, view = int.from_bytes(payload[5:7], "little"), payload[7]
            return self._read(BufferId(buffer), address, count, ReadView(view))
        if command == Command.GEMM:
            self._gemm(unpack_gemm(payload))
            self.passes_done += 1
            return b""
        if command == Command.STATUS:
            return self._status()
        if command == Command.IDENTIFY:
            i = self._info
            return pack_identity(**{**i.__dict__, "dataflow": int(Dataflow.WS),
                                    "engine": ENGINES.index(i.engine)})
        raise ModelError(f"the model does not run command {command}")

    # The host port. -----------------------------------------------------------------

    def _bytes(self, buffer: BufferId) -> np.ndarray:
        """The buffer as the host sees it: [words, stride] bytes (a copy)."""
        words = self.memory[buffer]
        raw = words.view(np.uint8) if buffer == BufferId.ACC else words
        raw = raw.reshape(words.shape[0], -1)
        stride = word_stride(raw.shape[1])
        return np.pad(raw, ((0, 0), (0, stride - raw.shape[1])))

    def _span(self, buffer, address, count, stride) -> None:
        if address + count > self.memory[buffer].shape[0] * stride:
            raise ModelError(f"{buffer.name} bytes {address}..{address + count} reach past "
                             f"the buffer (the executor refuses them)")

    def _write(self, buffer: BufferId, address: int, data: bytes) -> None:
        image = self._bytes(buffer)
        words, stride = image.shape
        self._span(buffer, address, len(data), stride)
        image.reshape(-1)[address:address + len(data)] = np.frombuffer(data, np.uint8)
        kept = image[:, :self.memory[buffer].shape[1] * self.memory[buffer].itemsize]
        self.memory[buffer] = np.ascontiguousarray(kept).view(self.memory[buffer].dtype)

    def _read(self, buffer: BufferId, address: int, count: int, view: ReadView) -> bytes:
        image = self._bytes(buffer)
        if view == ReadView.LOW16:
            if buffer != BufferId.ACC:
                raise ModelError("the LOW16 view is for ACC")
            image = image.reshape(image.shape[0], -1, 4)[:, :, :2].reshape(image.shape[0], -1)
        self._span(buffer, address, count, image.shape[1])
        return image.reshape(-1)[address:address + count].tobytes()

    # The engine. -------------------------------------------------------------------

    def _gemm(self, s: dict[str, int]) -> None:
        R, W = self.R, self.W
        mode = GemmMode(s["mode"])
        seb = mode == GemmMode.FP8SEB
        if seb != (self._info.engine == "seb"):
            raise ModelError(f"mode {mode.label} on the {self._info.engine} engine")
        M, N, out = s["m"], s["n"], OutFormat(s["out"])
        chunk = s["chunk"] if mode == GemmMode.FP8 else 0
        if min(M, s["k"], N) < 1:
            raise ModelError(f"a GEMM of {M}x{s['k']}x{N} (refused)")
        if chunk and not self._info.chunking:
            raise ModelError("chunk without the chunking hardware (refused)")
        L = EngineLayout(M, s["k"] * W, N, R, chunk, W)
        a_words, b_words, acc = (self.memory[b] for b in (BufferId.A, BufferId.B,
                                                          BufferId.ACC))
        a_end, b_end = s["a_base"] + L.a_words, s["b_base"] + L.b_words
        acc_end, out_end = s["acc_base"] + L.acc_words, s["out_base"] + L.out_words
        quantized = out != OutFormat.NONE
        if (a_end > len(a_words) or b_end > len(b_words) or acc_end > len(acc)
                or (quantized and out_end > len(a_words))):
            raise ModelError(f"a GEMM that does not fit the buffers: {s} (refused)")
        if quantized and s["out_base"] < a_end and s["a_base"] < out_end:
            raise ModelError(f"a quantized output over its own A tiles: {s} (refused)")
        # A: tile t at a_base + t*M + i, lane r = chunk k0_t + r of row i.
        tiles = a_words[s["a_base"]:a_end].reshape(len(L.tiles), M, R, W)
        A = np.zeros((M, L.k_chunks, W), np.uint8)
        for t, (k0, length, _, _) in enumerate(L.tiles):
            A[:, k0:k0 + length] = tiles[t, :, :length]
        A = A.reshape(M, -1)
        # B: chunk k of column n at b_base + (n // R) * k_chunks + k, lane n % R.
        B = b_words[s["b_base"]:b_end].reshape(L.n_tiles, L.k_chunks, R, W)
        B = B.transpose(1, 3, 0, 2).reshape(L.k_chunks * W, L.n_tiles * R)[:, :N]
        # ACC: C[i, j] at acc_base + (j // R) * M + i, lane j % R.
        C = None
        if s["accumulate"]:
            C = L.acc_result(acc[s["acc_base"]:acc_end])
        if seb:
            result = seb_matmul(A, B, C, s["bias_a"], s["bias_b"], W,
                                s["out_bias"] if quantized else None, self._info.room)
            sums, codes = result.C, result.Y
            if quantized:
                seen, _ = self._tracker if s["track"] else (None, 0)
                both = [e for e in (seen, result.max_exp) if e is not None]
                max_exp = max(both) if both else None
                self._tracker = (max_exp, next_bias(s["out_bias"], max_exp,
                                                    self._info.room))
        else:
            fmt_a = SourceFormat(s["fmt_a"]).label
            fmt_b = SourceFormat(s["fmt_b"]).label
            args = (A, B, C, mode.label, fmt_a, fmt_b, self._info.bias)
            sums = matmul(*args, chunk=chunk).astype(np.uint32)
            codes = matmul(*args, chunk=chunk, out=out.label) if quantized else None
        padded = np.full((M, L.n_tiles * R), 0xA5A5A5A5, np.uint32)
        padded[:, :N] = sums
        acc[s["acc_base"]:acc_end] = padded.reshape(M, L.n_tiles, R).transpose(1, 0, 2) \
            .reshape(-1, R)
        if quantized:
            per_word = R * W
            words = -(-N // per_word)
            padded = np.full((M, words * per_word), JUNK, np.uint8)
            padded[:, :N] = codes
            a_words[s["out_base"]:out_end] = padded.reshape(M, words, per_word) \
                .transpose(1, 0, 2).reshape(-1, per_word)
        self.gemms += 1

    def _status(self) -> bytes:
        counters = {name: 0 for name in STATUS_COUNTERS}
        counters["runs"] = self.gemms & 0xFFFF
        data = b"".join(counters[n].to_bytes(2, "little") for n in STATUS_COUNTERS)
        data += bytes(4)
        max_exp, bias = self._tracker
        return data + bytes([(max_exp or 0) & 0xFF, int(max_exp is not None), bias & 0xFF])


class LossyLink:
    """A transport to ``board`` (a ``ModelBoard``, its ``_execute`` the executor) through
    the link protocol, losing each request and each answer with probability ``loss``.
    ``counts``: requests and answers lost, repeats answered; ``stale``: READs executed
    again that did not give their first answer's bytes (the hazard the driver's rule for
    passing a READ must prevent)."""

    def __init__(self, board: ModelBoard, rng, loss: float = 0.1):
        self.board, self.rng, self.loss = board, rng, loss
        self.expected = int(rng.integers(0, 256))
        self.answers: dict[int, bytes] = {}      # seq -> its first answer's data
        self.received = b""
        self.outbox = bytearray()
        self.counts = dict(requests_lost=0, answers_lost=0, repeats=0, pure_again=0)
        self.stale = 0

    def write(self, data: bytes) -> None:
        frames, self.received = split_frames(self.received + bytes(data))
        for frame in frames:
            if self.rng.random() < self.loss:
                self.counts["requests_lost"] += 1
                continue
            seq, code, payload = decode_frame(frame)
            answer_code, data = self._handle(seq, code, payload)
            if self.rng.random() < self.loss:
                self.counts["answers_lost"] += 1
                continue
            self.outbox += b"\x00" + encode_frame(seq, answer_code, data)

    def _handle(self, seq, code, payload):
        if code == Command.SYNC:
            return ACK, bytes([code, self.expected]) + payload
        behind = (self.expected - seq) & 0xFF
        if seq == self.expected:
            data = bytes([code]) + self.board._execute(code, payload)
            self.answers[seq] = data
            self.expected = (seq + 1) & 0xFF
            return ACK, data
        if 1 <= behind <= HISTORY and seq in self.answers:
            self.counts["repeats"] += 1
            if code not in PURE:
                return ACK, self.answers[seq]
            self.counts["pure_again"] += 1
            data = bytes([code]) + self.board._execute(code, payload)
            if code == Command.READ and data != self.answers[seq]:
                self.stale += 1
            return ACK, data
        return NAK, bytes([code, Nak.SEQUENCE, self.expected])

    def read(self, n: int, timeout: float) -> bytes:
        data = bytes(self.outbox[:n])
        del self.outbox[:n]
        return data
