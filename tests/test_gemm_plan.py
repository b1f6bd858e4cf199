"""The driver's block planners (``host.gemm``) against every board's buffers: each block
fits, K blocks end on tiles (or chunks), and a quantized GEMM's column blocks start on
its output words, whose layout a kept tensor relies on."""

from types import SimpleNamespace

import pytest

from boards.targets import BOARDS, SEB_BOARDS
from host.errors import BoardError
from host.gemm import _ASpace, _lay, pipeline_plan, plan_blocks
from sim.board import SIM_BOARD, SIM_SEB_BOARD

pytestmark = pytest.mark.quick


def _info(rows, a_words, b_words, acc_words, engine="mpe", ways=1, pipeline=1, chunking=0):
    return SimpleNamespace(rows=rows, a_words=a_words, b_words=b_words, acc_words=acc_words,
                           engine=engine, ways=ways if engine == "seb" else 0,
                           pipeline=pipeline, chunking=chunking)


def _boards():
    yield "sim", _info(**{k: SIM_BOARD[k] for k in ("rows", "a_words", "b_words",
                                                    "acc_words", "chunking")})
    yield "sim-seb", _info(SIM_BOARD["rows"], SIM_BOARD["a_words"], SIM_BOARD["b_words"],
                           SIM_BOARD["acc_words"], ways=5, **{
                               k: SIM_SEB_BOARD[k] for k in ("engine", "pipeline")})
    for name, t in list(BOARDS.items()) + [(f"{n}-seb", t) for n, t in SEB_BOARDS.items()]:
        yield name, _info(t.rows, t.a_words, t.b_words, t.acc_words, t.engine, t.ways,
                          t.pipeline, t.chunking)


BOARD_INFOS = dict(_boards())
SHAPES = [(1, 1, 1), (7, 23, 5), (40, 10, 24), (96, 96, 96), (300, 70, 130),
          (33, 1000, 517), (1024, 64, 96)]


def _word_items(info):
    return _lay(info, 1, 1, 1).word_items


@pytest.mark.parametrize("name", BOARD_INFOS)
def test_plan_blocks_fit_and_align(name):
    info = BOARD_INFOS[name]
    R, W = info.rows, _lay(info, 1, 1, 1).ways
    for M, K, N in SHAPES:
        for out, keep in ((False, False), (True, False), (True, True)):
            for fixed_mk in (False, True):
                try:
                    mb, kb, nb = plan_blocks(M, K, N, R, 0, info, info.a_words, out,
                                             fixed_mk, keep)
                except BoardError:
                    assert fixed_mk or keep     # else rows can always split
                    continue
                L = _lay(info, mb, kb, nb)
                assert L.b_words <= info.b_words and L.acc_words <= info.acc_words
                assert (0 if fixed_mk else L.a_words) + \
                    (L.out_words if out and not keep else 0) <= info.a_words
                assert kb == K or kb % (R * W) == 0
                assert mb == M or not (fixed_mk or keep)
                assert nb == N or nb % (_word_items(info) if keep else R) == 0, \
                    (M, K, N, out, nb)


@pytest.mark.parametrize("name", BOARD_INFOS)
def test_pipeline_plan_fits_halves_and_aligns_quantized_columns(name):
    info = BOARD_INFOS[name]
    R = info.rows
    for M, K, N in SHAPES:
        for quantized in (False, True):
            plan = pipeline_plan(M, K, N, R, 0, info, _ASpace(info.a_words), quantized)
            if plan is None:
                continue
            mb, nb, bases = plan
            L = _lay(info, mb, K, nb)
            assert _lay(info, 1, K, N).b_words <= info.b_words
            assert L.acc_words <= info.acc_words // 2
            need = L.a_words + (2 * L.out_words if quantized else 0)
            assert bases[0] + need <= info.a_words // 2 <= bases[1]
            assert bases[1] + need <= info.a_words
            items = _word_items(info)
            if quantized and items <= nb < N:
                assert nb % items == 0, (M, K, N, nb)


def test_kept_output_column_blocks_start_on_words():
    """The case that once gave wrong codes: a 40x10 on-chip A times 10x24 on the
    simulated FP8-SEB board (words of 2 x 5 codes, 256 ACC words) split N into blocks of
    12, the second starting inside an output word; now blocks of 10."""
    info = BOARD_INFOS["sim-seb"]
    assert plan_blocks(40, 10, 24, info.rows, 0, info, 200, True, fixed_mk=True,
                       keep=True) == (40, 10, 10)


def test_quantized_fp8seb_ulx3s_96_cubed_reads_no_word_twice():
    """ULX3S FP8-SEB (words of 48 codes): column blocks of 48, not 72 (which made three
    output words a row where the whole row has two)."""
    info = BOARD_INFOS["ulx3s-seb"]
    mb, nb, _ = pipeline_plan(96, 96, 96, info.rows, 0, info, _ASpace(info.a_words), True)
    assert nb == 48
