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

from fp8hw.enums import GemmMode, OutFormat, SourceFormat
from golden.formats import FP8SEB
from golden.params import CHUNK, SEB_MODE
from golden.seb_matmul import SebMatmul
from hw.schedule import EngineLayout, engine_chunk, image_words, word_stride, words_image
from hw.soc.buffers import BufferId
from hw.soc.protocol import READ_BESIDE, Command, ReadView, pack_gemm, unpack_status
from host.errors import BoardError


def lane_codes(info) -> int:
    """Codes a lane of an A or B word holds: a chunk of ``ways`` on the FP8-SEB engine."""
    return info.ways if info.engine == "seb" else 1


def _lay(info, M, K, N, chunk=0) -> EngineLayout:
    """The board's layout of an M x K x N GEMM (its array's rows, its trees' ways)."""
    return EngineLayout(M, K, N, info.rows, chunk, lane_codes(info))


class OnChipTensor:
    """An M x N tensor of ``fmt`` codes in the board's A buffer from word ``base``."""

    def __init__(self, board, base: int, shape: tuple[int, int], fmt: str, bias=None):
        self.board, self.base, self.shape, self.fmt = board, base, shape, fmt
        self.bias = bias                        # fp8seb: the shared bias of its codes
        self.words = _lay(board.info, shape[0], 1, shape[1]).out_words
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
        layout = _lay(self.board.info, self.shape[0], 1, self.shape[1])
        return layout.out_result(_read_words(self.board, BufferId.A, self.base, self.words,
                                             layout.word_items, "u1"))

    def free(self) -> None:
        if self.live:
            _space(self.board).release(self)
            self.live = False


class _ASpace:
    """Which words of the A buffer hold live tensors; first fit for the rest."""

    def __init__(self, words: int):
        self.words = min(words, 1 << 16)       # a_base and out_base are 16-bit settings
        self.live: dict[int, tuple[int, int]] = {}

    def largest_free(self) -> int:
        """The most words free in one piece."""
        largest, at = 0, 0
        for base, words in sorted(self.live.values()) + [(self.words, 0)]:
            largest, at = max(largest, base - at), max(at, base + words)
        return largest

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


def _result_reads(board, mode, L, want_sums, codes_base, acc_base=0, **chunk):
    """The READs of a block's results (``L``: its layout), as (what, requests) for
    ``_store``: the sums from ACC at ``acc_base`` (``low16`` in fp8 mode) if
    ``want_sums``, and the quantized codes from A at ``codes_base`` unless it is None."""
    R = board.info.rows
    a_stride, acc_stride = word_stride(L.word_items), word_stride(4 * R)
    reads = []
    if want_sums:
        if mode == GemmMode.FP8:
            reads.append(("low16", _low16_requests(board, L.acc_words, acc_base, **chunk)))
        else:
            reads.append(("sums", board.read_requests(BufferId.ACC, acc_base * acc_stride,
                                                      L.acc_words * acc_stride, **chunk)))
    if codes_base is not None:
        reads.append(("codes", board.read_requests(BufferId.A, codes_base * a_stride,
                                                   L.out_words * a_stride, **chunk)))
    return reads


def _store(what, data, layout, R, where, sums_out, codes_out):
    """A block's results read back (``what``: ``low16`` or ``sums`` from ACC, ``codes``
    from A) into ``sums_out`` / ``codes_out`` at ``where``."""
    if what == "low16":
        sums_out[where] = layout.acc_result(_low16_result(data, R))
    elif what == "sums":
        sums_out[where] = layout.acc_result(image_words(data, R, "<u4"))
    else:
        codes_out[where] = layout.out_result(image_words(data, layout.word_items, "u1"))


def _out_step(info) -> int:
    """Columns of a quantized output word (R chunks of W codes; R on the MPE engine).
    Column blocks of a quantized GEMM start on such a word: the engine lays each block's
    codes out from byte 0 of its words, so a block that started inside a word would put
    them where the whole tensor's layout (a kept ``OnChipTensor``) does not have them, and
    each split word would cross the link once for each block."""
    return _lay(info, 1, 1, 1).word_items


def plan_blocks(M, K, N, R, chunk, info, a_free, out, fixed_mk=False, keep=False):
    """Block sizes (Mb, Kb, Nb) whose layouts fit the board's buffers: B and ACC words,
    and A words (with the quantized output's words when ``out``) within ``a_free``.
    ``fixed_mk``: A is on chip (its K blocks are runs of its tiles; its rows cannot
    split); ``keep``: the result stays on chip whole, in words already set aside (not
    counted in ``a_free``), so its rows cannot split and its column blocks start on its
    words."""
    # K blocks end on tile (or chunk) boundaries; on the FP8-SEB engine a tile is R
    # chunks of W codes.
    align = chunk or R * lane_codes(info)
    word = _out_step(info)

    def fits(mb, kb, nb):
        L = _lay(info, mb, kb, nb, chunk)
        a_need = (0 if fixed_mk else L.a_words) + (L.out_words if out and not keep else 0)
        return (L.b_words <= info.b_words and L.acc_words <= info.acc_words
                and a_need <= a_free)

    def smaller(x, step):
        return max(step, (x // 2) // step * step) if x > step else x

    def fewer_columns(nb):
        # Whole output words where the blocks' halves allow, so that no word of a
        # quantized result crosses the link twice; a kept result needs them.
        if keep or (out and nb // 2 >= word):
            return smaller(nb, word)
        return smaller(nb, R)

    mb, kb, nb = min(M, 65535), min(K, 65535 // align * align), min(N, 65535 // word * word)
    while not fits(mb, kb, nb):
        L = _lay(info, mb, kb, nb, chunk)
        options = [("k", L.a_words + L.b_words), ("n", L.b_words + L.acc_words)]
        if not fixed_mk and not keep:
            options.append(("m", L.a_words + L.acc_words))
        moved = False
        for name, _ in sorted(options, key=lambda o: -o[1]):
            new = {"m": smaller(mb, 1), "k": smaller(kb, align), "n": fewer_columns(nb)}[name]
            if new != {"m": mb, "k": kb, "n": nb}[name]:
                mb, kb, nb = (new, kb, nb) if name == "m" else (mb, new, nb) if name == "k" \
                    else (mb, kb, new)
                moved = True
                break
        if not moved:
            whole = "; an on-chip A or a kept result keeps its rows whole" \
                if fixed_mk or keep else ""
            raise BoardError(f"a {M}x{K}x{N} GEMM does not fit the board's buffers even "
                             f"in blocks (A {a_free} words free, B {info.b_words}, ACC "
                             f"{info.acc_words}{whole})")
    return mb, kb, nb


def pipeline_plan(M, K, N, R, chunk, info, space, quantized):
    """Blocks for the pipelined schedule (``_run_pipelined``): (mb, nb, a_bases) with B
    whole in its buffer, M in blocks of ``mb`` rows and N of ``nb`` columns, each block's
    sums in one half of ACC, each row block's A (and two quantized outputs) in one half
    of A at ``a_bases[half]``; None where B does not fit whole or A has no room.

    Row blocks of a quarter of M, so that each computes while the next crosses the link,
    but of at least twice the array's latency (fewer rows than that stall the array
    between K tiles), and of fewer rows where half of ACC or A holds no more."""
    if _lay(info, 1, K, N, chunk).b_words > info.b_words:
        return None
    acc_half, a_half = info.acc_words // 2, info.a_words // 2
    word = _out_step(info)
    min_rows = 2 * (R * max(info.pipeline, 1) + R + 2)
    mb = min(M, max(min_rows, -(-M // 4)), acc_half)
    while mb >= 1:
        nb = min(N, R * (acc_half // mb))
        if quantized and word <= nb < N:
            nb -= nb % word
        L = _lay(info, mb, K, nb, chunk)
        need = L.a_words + (2 * L.out_words if quantized else 0)
        bases = [space.allocate(need, lo=0, hi=a_half),
                 space.allocate(need, lo=a_half, hi=info.a_words)]
        if None not in bases:
            return mb, nb, bases
        mb //= 2
    return None


def _gemm_request(codes, L, *, accumulate, m, n, chunk, a_base, out_base, acc_base=0,
                  b_base=0, quantize=True, track=0):
    """The GEMM request of a block with layout ``L`` (its k in the engine's chunks)."""
    return (Command.GEMM, pack_gemm(
        mode=codes["mode"], fmt_a=codes["fmt_a"], fmt_b=codes["fmt_b"],
        out=codes["out"] if quantize else 0, accumulate=accumulate, m=m, k=L.k_chunks, n=n,
        chunk=chunk, a_base=a_base, out_base=out_base, acc_base=acc_base, b_base=b_base,
        bias_a=codes["bias_a"], bias_b=codes["bias_b"], out_bias=codes["out_bias"],
        track=track))


def _run_pipelined(board, A, B, C, codes, chunk, plan, quantized, want_sums, sums):
    """The GEMM as one stream of requests: B once, then for each block (row blocks of
    ``mb``, column blocks of ``nb`` within them) its A (for a new row block), its initial
    C, its GEMM, and the previous block's results. A GEMM is answered once it starts, so
    while it computes the next block's operands and the previous block's results cross
    the link: they sit in the other halves of A and ACC, which the board lets the host
    reach beside a running GEMM (``hw.soc.protocol``: every request still sees the
    buffers as if the ones before it had ended). Returns (sums, codes, status): the
    board's STATUS after the last block when ``quantized`` (the output tracker)."""
    info = board.info
    R = info.rows
    M, K = A.shape
    N = B.shape[1]
    mb, nb, a_bases = plan
    acc_half = info.acc_words // 2
    whole = _lay(info, 1, K, N, chunk)
    a_stride, acc_stride = word_stride(whole.word_items), word_stride(4 * R)
    requests = board.write_requests(BufferId.B, 0, words_image(whole.b(B), "u1"))
    blocks = [(m0, n0) for m0 in range(0, M, mb) for n0 in range(0, N, nb)]
    reads = []                                   # (block, what, request count)

    def read_block(i):
        m0, n0 = blocks[i]
        rows, cols = min(mb, M - m0), min(nb, N - n0)
        for what, rs in _result_reads(board, codes["mode"], _lay(info, rows, 1, cols),
                                      want_sums, out_bases[i] if quantized else None,
                                      (i % 2) * acc_half, chunk=READ_BESIDE):
            requests.extend(rs)
            reads.append((i, what, len(rs)))

    out_bases = []
    row_block = -1
    for i, (m0, n0) in enumerate(blocks):
        rows, cols = min(mb, M - m0), min(nb, N - n0)
        L = _lay(info, rows, K, cols, chunk)
        if n0 == 0:
            row_block += 1
            a_base = a_bases[row_block % 2]
            requests += board.write_requests(BufferId.A, a_base * a_stride,
                                             words_image(L.a(A[m0:m0 + rows]), "u1"))
        # Two quantized outputs a row block, one a block in turn: the previous block's
        # is read after this GEMM, which must not overwrite it.
        out_base = a_base + L.a_words + (i % 2) * _lay(info, mb, 1, nb).out_words
        out_bases.append(out_base)
        acc_base = (i % 2) * acc_half
        if C is not None:
            requests += board.write_requests(BufferId.ACC, acc_base * acc_stride, words_image(
                _lay(info, rows, 1, cols).acc(C[m0:m0 + rows, n0:n0 + cols]), "<u4"))
        requests.append(_gemm_request(
            codes, L, accumulate=int(C is not None), m=rows, n=cols, chunk=chunk,
            a_base=a_base, out_base=out_base, acc_base=acc_base,
            b_base=(n0 // R) * whole.k_chunks, track=int(i > 0)))
        if i:
            read_block(i - 1)
    read_block(len(blocks) - 1)
    if quantized:                                # after the last READ: every GEMM ended
        requests.append((Command.STATUS, b""))

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
        where = (slice(m0, m0 + rows), slice(n0, n0 + cols))
        _store(what, data, _lay(info, rows, 1, cols), R, where, sums_out, codes_out)
    return sums_out, codes_out, unpack_status(answers[-1]) if quantized else None


def _settings(info, mode, fmt_a, fmt_b, chunk, out, bias_a, bias_b, out_bias):
    """The GEMM's codes (``GEMM_SETTINGS`` fields) and chunk; BoardError for a setting the
    board's engine cannot run."""
    from golden.formats import FormatError, check_bias
    try:
        seb = GemmMode.from_label(mode) == GemmMode.FP8SEB
        chunk = CHUNK.check(chunk, "matmul")
        out_code = OutFormat.FP8SEB if out_bias is not None else OutFormat.from_label(out)
        for name, bias in (("bias_a", bias_a), ("bias_b", bias_b), ("out_bias", out_bias)):
            if bias is not None:
                check_bias(FP8SEB, bias)
    except (TypeError, ValueError, FormatError) as e:
        raise BoardError(str(e)) from None
    engine = info.engine
    if seb != (engine == "seb"):
        raise BoardError(f"mode {mode} needs the {'FP8-SEB' if seb else 'MPE'} engine; this "
                         f"board has the {'FP8-SEB' if engine == 'seb' else 'MPE'} engine")
    if seb:
        if (fmt_a, fmt_b, chunk, out) != ("e4m3", "e4m3", 0, "none"):
            raise BoardError("mode fp8seb takes bias_a, bias_b and out_bias, not fmt_a, "
                             "fmt_b, chunk or out")
    elif (bias_a, bias_b, out_bias) != (0, 0, None):
        raise BoardError(f"bias_a, bias_b and out_bias are for mode fp8seb, not {mode}")
    codes = dict(mode=GemmMode.from_label(mode),
                 fmt_a=SourceFormat.from_label(fmt_a), fmt_b=SourceFormat.from_label(fmt_b),
                 out=out_code, bias_a=int(bias_a), bias_b=int(bias_b),
                 out_bias=0 if out_bias is None else int(out_bias))
    quantized = out_code != OutFormat.NONE
    if quantized and mode not in ("fp8", SEB_MODE):
        raise BoardError(f"out={out} needs mode fp8 (the integer modes give integers)")
    return codes, engine_chunk(mode, chunk), quantized


def run_matmul(board, A, B, C, mode, fmt_a, fmt_b, chunk, out, *, bias_a=0, bias_b=0,
               out_bias=None, keep, sums):
    info = board.info
    R = info.rows
    codes, chunk, quantized = _settings(info, mode, fmt_a, fmt_b, chunk, out, bias_a, bias_b,
                                        out_bias)
    seb = codes["mode"] == GemmMode.FP8SEB
    if keep and not quantized:
        raise BoardError("keep=True needs a quantized output (out=e4m3 or e5m2, or "
                         "out_bias in mode fp8seb): a tensor stays on chip as FP8")
    if chunk and not info.chunking:
        raise BoardError("this board was built without chunk-based accumulation")
    resident = isinstance(A, OnChipTensor)
    if resident:
        A._check(board)
        fmt = SEB_MODE if seb else fmt_a
        if A.fmt != fmt:
            raise BoardError(f"the on-chip A holds {A.fmt} codes, not {fmt}")
        if seb and A.bias != bias_a:
            raise BoardError(f"the on-chip A's codes have the shared bias {A.bias}, not "
                             f"bias_a={bias_a}")
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
        if seb and int(C.max(initial=0)) >> 30:
            raise BoardError("C must hold fp30 codes (30 bits) in mode fp8seb")
    want_sums = sums or not quantized

    space = _space(board)
    if not resident and not keep:
        plan = pipeline_plan(M, K, N, R, chunk, info, space, quantized)
        if plan is not None:
            sums_out, codes_out, status = _run_pipelined(board, A, B, C, codes, chunk, plan,
                                                         quantized, want_sums, sums)
            return _result(seb, quantized, sums, want_sums, sums_out, codes_out, status)
    kept = None
    if keep:
        words = _lay(info, M, 1, N).out_words
        base = space.allocate(words)
        if base is None:
            raise BoardError(f"no room in the A buffer for the kept {M}x{N} result: it "
                             f"needs {words} words, {space.largest_free()} are free in "
                             f"one piece")
        kept = OnChipTensor(board, base, (M, N), SEB_MODE if seb else out,
                            codes["out_bias"] if seb else None)
        space.hold(kept)
    try:
        mb, kb, nb = plan_blocks(M, K, N, R, chunk, info, space.largest_free(), quantized,
                                 fixed_mk=resident, keep=keep)
        sums_out = np.zeros((M, N), np.uint32)
        codes_out = np.zeros((M, N), np.uint8)
        first = True
        for m0 in range(0, M, mb):
            m1 = min(m0 + mb, M)
            for n0 in range(0, N, nb):
                n1 = min(n0 + nb, N)
                _run_block(board, A, B, C, codes, chunk, resident, kept, space,
                           (m0, m1), (n0, n1), kb, quantized, want_sums,
                           sums_out, codes_out, track=int(not first))
                first = False
        status = board.status() if quantized else None
    except BaseException:
        if kept is not None:
            kept.free()
        raise
    if kept is not None:
        if seb:
            kept.max_exp, kept.next_bias = _tracked(status)
        return kept
    return _result(seb, quantized, sums, want_sums, sums_out, codes_out, status)


def _tracked(status) -> tuple:
    """(max_exp or None, next_bias) from the board's STATUS after a quantized GEMM."""
    return (status["max_exp"] if status["seen"] else None), status["next_bias"]


def _result(seb, quantized, sums, want_sums, sums_out, codes_out, status):
    """What ``Board.matmul`` returns: in fp8seb mode a ``golden.SebMatmul`` (C when read,
    Y, max_exp and next_bias with an out_bias); else the sums, the codes, or both."""
    if seb:
        if not quantized:
            return SebMatmul(sums_out)
        return SebMatmul(sums_out if want_sums else None, codes_out, *_tracked(status))
    if quantized:
        return (codes_out, sums_out) if sums else codes_out
    return sums_out


def _run_block(board, A, B, C, codes, chunk, resident, kept, space, rows, cols, kb,
               quantized, want_sums, sums_out, codes_out, track=0):
    """One block of rows x cols, its K in blocks of ``kb``: one batch of requests."""
    info = board.info
    R = info.rows
    (m0, m1), (n0, n1) = rows, cols
    M, N = m1 - m0, n1 - n0
    K = A.shape[1]
    result = _lay(info, M, 1, N)
    a_stride = word_stride(result.word_items)
    requests = []
    if C is not None:
        requests += board.write_requests(BufferId.ACC, 0,
                                         words_image(result.acc(C[m0:m1, n0:n1]), "<u4"))
    for k0 in range(0, K, kb):
        k1 = min(k0 + kb, K)
        L = _lay(info, M, k1 - k0, N, chunk)
        last = k1 == K
        if resident:                     # K blocks of it: runs of its tiles
            a_base = A.base + k0 // (R * lane_codes(info)) * M
            busy = [(A.base, A.words)]
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
                out_base = kept.base + (n0 // result.word_items) * kept.shape[0]
            else:
                out_base = space.allocate(result.out_words, busy=busy)
                if out_base is None:
                    raise BoardError("no room in the A buffer for the quantized result")
        requests.append(_gemm_request(
            codes, L, accumulate=int(C is not None or k0 > 0), m=M, n=N, chunk=chunk,
            a_base=a_base, out_base=out_base, quantize=last, track=track))
    reads = _result_reads(board, codes["mode"], result, want_sums,
                          out_base if quantized and kept is None else None)
    answers = board.requests(requests + [r for _, rs in reads for r in rs])
    at = len(requests)
    for what, rs in reads:
        data = b"".join(answers[at:at + len(rs)])
        at += len(rs)
        _store(what, data, result, R, (slice(m0, m1), slice(n0, n1)), sums_out, codes_out)
