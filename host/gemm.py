"""Whole GEMMs on the board's engine: splitting a GEMM into blocks the buffers hold, laying
the operands out (``hw.schedule.EngineLayout``), and tensors that stay on chip.

A GEMM that fits is one batch of pipelined requests: WRITE A, B (and an initial C), one
GEMM, READ the results (fp8 sums as 16-bit codes, or FP8 codes quantized on chip). A
bigger one is split: rows of A and columns of B into independent blocks, K into blocks
that continue the same fold on chip (the sums stay in ACC; with ``chunk``, K blocks end
on chunk boundaries), so the bits are those of ``golden.matmul`` whatever the split.

``OnChipTensor``: the FP8 result of ``Board.matmul(..., out=fmt, keep=True)``, left in the
board's A buffer in the A layout of a next GEMM whose K is its N; pass it as that GEMM's
A and only the final result crosses the link. ``numpy()`` fetches it, ``free()`` gives
its space back.
"""

from __future__ import annotations

import numpy as np

from fp8hw.enums import Mode, OutFormat, SourceFormat
from golden.params import CHUNK
from hw.schedule import EngineLayout, engine_chunk, image_words, word_stride, words_image
from hw.soc.buffers import BufferId
from hw.soc.protocol import READ_BESIDE, Command, ReadView, pack_gemm
from host.errors import BoardError


class OnChipTensor:
    """An M x N tensor of ``fmt`` codes in the board's A buffer from word ``base``."""

    def __init__(self, board, base: int, shape: tuple[int, int], fmt: str):
        self.board, self.base, self.shape, self.fmt = board, base, shape, fmt
        self.words = -(-shape[1] // board.info.rows) * shape[0]
        self.live = True

    def __repr__(self):
        state = "" if self.live else ", freed"
        return f"OnChipTensor({self.shape[0]}x{self.shape[1]} {self.fmt} at A word {self.base}{state})"

    def _check(self, board=None):
        if not self.live:
            raise BoardError(f"{self!r} was freed")
        if board is not None and board is not self.board:
            raise BoardError(f"{self!r} is on another board")

    def numpy(self) -> np.ndarray:
        """The codes, uint8 [M, N], read from the board (the tensor stays)."""
        self._check()
        layout = EngineLayout(*self.shape, self.shape[1], self.board.info.rows)
        return layout.out_result(_read_words(self.board, BufferId.A, self.base, self.words,
                                             self.board.info.rows, "u1"))

    def free(self) -> None:
        if self.live:
            _space(self.board).release(self)
            self.live = False


class _ASpace:
    """Which words of the A buffer hold live tensors; first fit for the rest."""

    def __init__(self, words: int):
        self.words = min(words, 1 << 16)       # a_base and out_base are 16-bit settings
        self.live: dict[int, tuple[int, int]] = {}

    def free_words(self) -> int:
        return self.words - sum(n for _, n in self.live.values())

    def allocate(self, n: int, busy=(), lo: int = 0, hi: int | None = None) -> int | None:
        """A base for ``n`` words in [lo, hi) clear of live tensors and of the
        (base, words) ``busy``."""
        hi = self.words if hi is None else min(hi, self.words)
        taken = sorted(list(self.live.values()) + list(busy))
        at = lo
        for base, words in taken:
            if base + words <= at:
                continue
            if base - at >= n:
                break
            at = max(at, base + words)
        return at if hi - at >= n else None

    def hold(self, tensor: OnChipTensor) -> None:
        self.live[id(tensor)] = (tensor.base, tensor.words)

    def release(self, tensor: OnChipTensor) -> None:
        self.live.pop(id(tensor), None)


def _space(board) -> _ASpace:
    if getattr(board, "_a_space", None) is None:
        board._a_space = _ASpace(board.info.a_words)
    return board._a_space


def _read_words(board, buffer, base, words, items, dtype):
    stride = word_stride(items * np.dtype(dtype).itemsize)
    data = board.read(buffer, base * stride, words * stride)
    return image_words(data, items, dtype)


def _low16_requests(board, words: int, base: int = 0, **chunk):
    """READs of ``words`` words of ACC from word ``base`` in the LOW16 view."""
    R = board.info.rows
    half = word_stride(4 * R) // 2
    return board.read_requests(BufferId.ACC, base * half, words * half, ReadView.LOW16,
                               **chunk)


def _low16_result(data: bytes, R: int) -> np.ndarray:
    half = word_stride(4 * R) // 2
    return np.frombuffer(data, "<u2").reshape(-1, half // 2)[:, :R].astype(np.uint32)


def _result_reads(board, mode, out_words, want_sums, codes_base, acc_base=0, **chunk):
    """The READs of a block's ``out_words`` result words, as (what, requests) for
    ``_store``: the sums from ACC at ``acc_base`` (``low16`` in fp8 mode) if
    ``want_sums``, and the quantized codes from A at ``codes_base`` unless it is None."""
    R = board.info.rows
    a_stride, acc_stride = word_stride(R), word_stride(4 * R)
    reads = []
    if want_sums:
        if mode == Mode.FP8:
            reads.append(("low16", _low16_requests(board, out_words, acc_base, **chunk)))
        else:
            reads.append(("sums", board.read_requests(BufferId.ACC, acc_base * acc_stride,
                                                      out_words * acc_stride, **chunk)))
    if codes_base is not None:
        reads.append(("codes", board.read_requests(BufferId.A, codes_base * a_stride,
                                                   out_words * a_stride, **chunk)))
    return reads


def _store(what, data, layout, R, where, sums_out, codes_out):
    """A block's results read back (``what``: ``low16`` or ``sums`` from ACC, ``codes``
    from A) into ``sums_out`` / ``codes_out`` at ``where``."""
    if what == "low16":
        sums_out[where] = layout.acc_result(_low16_result(data, R))
    elif what == "sums":
        sums_out[where] = layout.acc_result(image_words(data, R, "<u4"))
    else:
        codes_out[where] = layout.out_result(image_words(data, R, "u1"))


def plan_blocks(M, K, N, R, chunk, info, a_free, out, fixed_mk=False):
    """Block sizes (Mb, Kb, Nb) whose layouts fit the board's buffers: B and ACC words,
    and A words (with the quantized output's words when ``out``) within ``a_free``."""
    align = chunk or R                       # K blocks end on tile (or chunk) boundaries

    def fits(mb, kb, nb):
        L = EngineLayout(mb, kb, nb, R, chunk)
        a_need = (0 if fixed_mk else L.a_words) + (L.acc_words if out else 0)
        return (L.b_words <= info.b_words and L.acc_words <= info.acc_words
                and a_need <= a_free)

    def smaller(x, step):
        return max(step, (x // 2) // step * step) if x > step else x

    mb, kb, nb = min(M, 65535), min(K, 65535 // align * align), min(N, 65535 // R * R)
    while not fits(mb, kb, nb):
        L = EngineLayout(mb, kb, nb, R, chunk)
        options = []
        if not fixed_mk:
            options += [("m", L.a_words + L.acc_words), ("k", L.a_words + L.b_words)]
        options.append(("n", L.b_words + L.acc_words))
        moved = False
        for name, _ in sorted(options, key=lambda o: -o[1]):
            new = {"m": smaller(mb, 1), "k": smaller(kb, align), "n": smaller(nb, R)}[name]
            if new != {"m": mb, "k": kb, "n": nb}[name]:
                mb, kb, nb = (new, kb, nb) if name == "m" else (mb, new, nb) if name == "k" \
                    else (mb, kb, new)
                moved = True
                break
        if not moved:
            raise BoardError(f"a {M}x{K}x{N} GEMM does not fit the board's buffers "
                             f"even in blocks (A {a_free} words free)")
    return mb, kb, nb


def pipeline_plan(M, K, N, R, chunk, info, space, quantized):
    """Blocks for the pipelined schedule (``_run_pipelined``): (mb, nb, a_bases) with B
    whole in its buffer, M in blocks of ``mb`` rows and N of ``nb`` columns, each block's
    sums in one half of ACC, each row block's A (and two quantized outputs) in one half
    of A at ``a_bases[half]``; None where B does not fit whole or A has no room.

    Row blocks of a quarter of M, so that each computes while the next crosses the link,
    but of at least twice the array's latency (fewer rows than that stall the array
    between K tiles), and of fewer rows where half of ACC or A holds no more."""
    if EngineLayout(1, K, N, R, chunk).b_words > info.b_words:
        return None
    acc_half, a_half = info.acc_words // 2, info.a_words // 2
    min_rows = 2 * (R * max(info.pipeline, 1) + R + 2)
    mb = min(M, max(min_rows, -(-M // 4)), acc_half)
    while mb >= 1:
        nb = min(N, R * (acc_half // mb))
        L = EngineLayout(mb, K, nb, R, chunk)
        need = L.a_words + (2 * L.acc_words if quantized else 0)
        bases = [space.allocate(need, lo=0, hi=a_half),
                 space.allocate(need, lo=a_half, hi=info.a_words)]
        if None not in bases:
            return mb, nb, bases
        mb //= 2
    return None


def _run_pipelined(board, A, B, C, codes, chunk, plan, quantized, want_sums, sums):
    """The GEMM as one stream of requests: B once, then for each block (row blocks of
    ``mb``, column blocks of ``nb`` within them) its A (for a new row block), its initial
    C, its GEMM, and the previous block's results. A GEMM is answered once it starts, so
    while it computes the next block's operands and the previous block's results cross
    the link: they sit in the other halves of A and ACC, which the board lets the host
    reach beside a running GEMM (``hw.soc.protocol``: every request still sees the
    buffers as if the ones before it had ended)."""
    info = board.info
    R = info.rows
    M, K = A.shape
    N = B.shape[1]
    mb, nb, a_bases = plan
    acc_half = info.acc_words // 2
    a_stride, acc_stride = word_stride(R), word_stride(4 * R)
    requests = board.write_requests(BufferId.B, 0, words_image(EngineLayout(
        1, K, N, R, chunk).b(B), "u1"))
    blocks = [(m0, n0) for m0 in range(0, M, mb) for n0 in range(0, N, nb)]
    reads = []                                   # (block, what, request count)

    def read_block(i):
        m0, n0 = blocks[i]
        rows, cols = min(mb, M - m0), min(nb, N - n0)
        out_words = EngineLayout(rows, 1, cols, R).acc_words
        for what, rs in _result_reads(board, codes["mode"], out_words, want_sums,
                                      out_bases[i] if quantized else None,
                                      (i % 2) * acc_half, chunk=READ_BESIDE):
            requests.extend(rs)
            reads.append((i, what, len(rs)))

    out_bases = []
    row_block = -1
    for i, (m0, n0) in enumerate(blocks):
        rows, cols = min(mb, M - m0), min(nb, N - n0)
        L = EngineLayout(rows, K, cols, R, chunk)
        if n0 == 0:
            row_block += 1
            a_base = a_bases[row_block % 2]
            requests += board.write_requests(BufferId.A, a_base * a_stride,
                                             words_image(L.a(A[m0:m0 + rows]), "u1"))
        # Two quantized outputs a row block, one a block in turn: the previous block's
        # is read after this GEMM, which must not overwrite it.
        out_base = a_base + L.a_words + (i % 2) * EngineLayout(mb, 1, nb, R).acc_words
        out_bases.append(out_base)
        acc_base = (i % 2) * acc_half
        if C is not None:
            requests += board.write_requests(BufferId.ACC, acc_base * acc_stride, words_image(
                EngineLayout(rows, 1, cols, R).acc(C[m0:m0 + rows, n0:n0 + cols]), "<u4"))
        requests.append((Command.GEMM, pack_gemm(
            mode=codes["mode"], fmt_a=codes["fmt_a"], fmt_b=codes["fmt_b"],
            out=codes["out"], accumulate=int(C is not None), m=rows, k=K, n=cols,
            chunk=chunk, a_base=a_base, out_base=out_base, acc_base=acc_base,
            b_base=(n0 // R) * K)))
        if i:
            read_block(i - 1)
    read_block(len(blocks) - 1)

    answers = board.requests(requests)
    sums_out = np.zeros((M, N), np.uint32)
    codes_out = np.zeros((M, N), np.uint8)
    at = 0
    # The reads sit between other requests: find each one's answers by its index.
    read_at = [k for k, (command, _) in enumerate(requests) if command == Command.READ]
    for i, what, n in reads:
        data = b"".join(answers[k] for k in read_at[at:at + n])
        at += n
        m0, n0 = blocks[i]
        rows, cols = min(mb, M - m0), min(nb, N - n0)
        layout = EngineLayout(rows, 1, cols, R)
        where = (slice(m0, m0 + rows), slice(n0, n0 + cols))
        _store(what, data, layout, R, where, sums_out, codes_out)
    if quantized:
        return (codes_out, sums_out) if sums else codes_out
    return sums_out


def run_matmul(board, A, B, C, mode, fmt_a, fmt_b, chunk, out, *, keep, sums):
    try:
        codes = dict(mode=Mode.from_label(mode), fmt_a=SourceFormat.from_label(fmt_a),
                     fmt_b=SourceFormat.from_label(fmt_b), out=OutFormat.from_label(out))
        chunk = CHUNK.check(chunk, "matmul")
    except (TypeError, ValueError) as e:
        raise BoardError(str(e)) from None
    info = board.info
    R = info.rows
    quantized = codes["out"] != OutFormat.NONE
    if quantized and mode != "fp8":
        raise BoardError(f"out={out} needs mode fp8 (the integer modes give integers)")
    if keep and not quantized:
        raise BoardError("keep=True needs out=e4m3 or e5m2: a tensor stays on chip as FP8")
    chunk = engine_chunk(mode, chunk)
    if chunk and not info.chunking:
        raise BoardError("this board was built without chunk-based accumulation")
    resident = isinstance(A, OnChipTensor)
    if resident:
        A._check(board)
        if A.fmt != fmt_a:
            raise BoardError(f"the on-chip A holds {A.fmt} codes, not fmt_a={fmt_a}")
        if chunk % R:
            raise BoardError(f"an on-chip A needs chunk 0 or a multiple of {R}, got {chunk}")
        M, K = A.shape
    else:
        A = np.asarray(A, np.uint8)
        if A.ndim != 2:
            raise BoardError(f"A must be [M, K], got shape {A.shape}")
        M, K = A.shape
    B = np.asarray(B, np.uint8)
    if B.ndim != 2 or B.shape[0] != K:
        raise BoardError(f"B must be [{K}, N], got shape {B.shape}")
    N = B.shape[1]
    if min(M, K, N) < 1:
        raise BoardError(f"empty GEMM {M}x{K}x{N}")
    if C is not None:
        C = np.asarray(C, np.uint32)
        if C.shape != (M, N):
            raise BoardError(f"C must be [{M}, {N}], got shape {C.shape}")

    space = _space(board)
    if not resident and not keep:
        plan = pipeline_plan(M, K, N, R, chunk, info, space, quantized)
        if plan is not None:
            return _run_pipelined(board, A, B, C, codes, chunk, plan, quantized,
                                  sums or not quantized, sums)
    mb, kb, nb = plan_blocks(M, K, N, R, chunk, info, space.free_words(), quantized,
                             fixed_mk=resident)
    if resident and (mb, kb) != (M, K):
        raise BoardError(f"an on-chip A of {M}x{K} must be used whole; the board holds "
                         f"{mb}x{kb} of it with N blocks of {nb}")
    if keep and mb != M:
        raise BoardError(f"keep=True: the {M}x{N} result does not fit on chip in one "
                         f"piece (rows in blocks of {mb})")
    sums_out = np.zeros((M, N), np.uint32)
    codes_out = np.zeros((M, N), np.uint8)
    kept = None
    if keep:
        base = space.allocate(EngineLayout(M, 1, N, R).acc_words,
                              busy=[(A.base, A.words)] if resident else [])
        if base is None:
            raise BoardError("no room in the A buffer for the kept result")
        kept = OnChipTensor(board, base, (M, N), out)
        space.hold(kept)
    try:
        for m0 in range(0, M, mb):
            m1 = min(m0 + mb, M)
            for n0 in range(0, N, nb):
                n1 = min(n0 + nb, N)
                _run_block(board, A, B, C, codes, chunk, resident, kept, space,
                           (m0, m1), (n0, n1), kb, quantized, sums or not quantized,
                           sums_out, codes_out)
    except BaseException:
        if kept is not None:
            kept.free()
        raise
    if kept is not None:
        return kept
    if quantized:
        return (codes_out, sums_out) if sums else codes_out
    return sums_out


def _run_block(board, A, B, C, codes, chunk, resident, kept, space, rows, cols, kb,
               quantized, want_sums, sums_out, codes_out):
    """One block of rows x cols, its K in blocks of ``kb``: one batch of requests."""
    R = board.info.rows
    (m0, m1), (n0, n1) = rows, cols
    M, N = m1 - m0, n1 - n0
    K = A.shape[1]
    a_stride = word_stride(R)
    requests = []
    if C is not None:
        full = EngineLayout(M, 1, N, R)
        requests += board.write_requests(BufferId.ACC, 0,
                                         words_image(full.acc(C[m0:m1, n0:n1]), "<u4"))
    out_words = EngineLayout(M, 1, N, R).acc_words
    for k0 in range(0, K, kb):
        k1 = min(k0 + kb, K)
        L = EngineLayout(M, k1 - k0, N, R, chunk)
        last = k1 == K
        if resident:
            a_base, busy = A.base, [(A.base, A.words)]
        else:
            a_base = space.allocate(L.a_words)
            if a_base is None:
                raise BoardError("no room in the A buffer for the operand A")
            busy = [(a_base, L.a_words)]
            requests += board.write_requests(BufferId.A, a_base * a_stride,
                                             words_image(L.a(A[m0:m1, k0:k1]), "u1"))
        requests += board.write_requests(BufferId.B, 0, words_image(L.b(B[k0:k1, n0:n1]), "u1"))
        out_base = 0
        if quantized and last:
            if kept is not None:
                out_base = kept.base + (n0 // R) * kept.shape[0]
            else:
                out_base = space.allocate(out_words, busy=busy)
                if out_base is None:
                    raise BoardError("no room in the A buffer for the quantized result")
        requests.append((Command.GEMM, pack_gemm(
            mode=codes["mode"], fmt_a=codes["fmt_a"], fmt_b=codes["fmt_b"],
            out=codes["out"] if last else 0, accumulate=int(C is not None or k0 > 0),
            m=M, k=k1 - k0, n=N, chunk=chunk, a_base=a_base, out_base=out_base)))
    reads = _result_reads(board, codes["mode"], out_words, want_sums,
                          out_base if quantized and kept is None else None)
    answers = board.requests(requests + [r for _, rs in reads for r in rs])
    at = len(requests)
    layout = EngineLayout(M, 1, N, R)
    for what, rs in reads:
        data = b"".join(answers[at:at + len(rs)])
        at += len(rs)
        _store(what, data, layout, R, (slice(m0, m1), slice(n0, n1)), sums_out, codes_out)
