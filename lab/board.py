"""A trained ``hfp8`` network's inference on the board (or the simulated board), through
the host driver, checked bit for bit against the golden model.

Each layer is one GEMM on the board: the layer's bias row is the GEMM's initial C (DLFloat16
codes, so the bias add happens in the accumulator), and a hidden layer's sums are quantized
to ``e4m3`` on chip (``out="e4m3"``, the board's ``quant16``) and kept there
(``keep=True``: an ``OnChipTensor`` in the A buffer, the next GEMM's A).

ReLU: the board has no activation unit (its engine computes GEMMs and quantizes their
outputs, nothing else), so between two layers the host reads the kept codes back, zeroes
the negative ones (ReLU on e4m3 codes is exact: it clears a code with its sign bit set)
and writes them back into the tensor's own words; the next GEMM then takes the tensor as
its resident A. This round trip moves as many bytes as sending the hidden layer as a new
A would: on this board a resident operand saves link time only between layers with no
activation between them. The golden model runs the same sequence (``golden.matmul`` with
the same initial C, ``out="e4m3"``, the same ReLU on codes), and its codes are what
the lab's ``hfp8`` recipe computes in training (quantizing a DLFloat16 sum to e4m3 and then
applying ReLU gives the codes of ReLU then quantization).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

import golden
from hw.schedule import EngineLayout, engine_chunk, word_stride, words_image
from hw.soc.buffers import BufferId
from lab.errors import LabError
from lab.hfp8 import E4M3_BIAS
from lab.mlp import Mlp

SIGN = 0x80


def relu_codes(codes: np.ndarray) -> np.ndarray:
    """ReLU of e4m3 codes: a code with its sign bit set (a negative value, -0) becomes +0."""
    return np.where(codes & SIGN, 0, codes).astype(np.uint8)


def quantized_layers(model: Mlp):
    """The network as the board takes it: e4m3 weight codes and DLFloat16 bias codes."""
    return [(golden.encode(w, "e4m3", bias=E4M3_BIAS),
             golden.encode(b, golden.DLFLOAT16).astype(np.uint32))
            for w, b in zip(model.weights, model.biases)]


def golden_forward(model: Mlp, images: np.ndarray, chunk: int) -> list[np.ndarray]:
    """Each hidden layer's e4m3 codes before the ReLU and the output layer's DLFloat16 sums
    (uint32), by the golden model."""
    a = golden.encode(images, "e4m3", bias=E4M3_BIAS)
    outputs = []
    layers = quantized_layers(model)
    for i, (w, b) in enumerate(layers):
        c = np.broadcast_to(b, (len(a), len(b)))
        last = i == len(layers) - 1
        out = golden.matmul(a, w, c, chunk=chunk, bias=E4M3_BIAS,
                            out="none" if last else "e4m3")
        outputs.append(out)
        a = relu_codes(out)
    return outputs


def images_per_batch(info, model: Mlp, chunk: int, wanted: int) -> int:
    """The most images (up to ``wanted``) whose layers fit the board's A buffer at once: a
    layer's A (or its resident input) beside its kept output."""
    R = info.rows
    sizes = model.sizes

    def fits(n):
        first = EngineLayout(n, sizes[0], sizes[1], R, engine_chunk("fp8", chunk)).a_words
        outs = [EngineLayout(n, 1, h, R).out_words for h in sizes[1:-1]]
        need = [first + outs[0]] + [a + b for a, b in zip(outs, outs[1:])]
        return max(need) <= info.a_words

    n = wanted
    while n > 1 and not fits(n):
        n -= 1
    if not fits(n):
        raise LabError(f"even one image's layers do not fit the board's A buffer "
                       f"({info.a_words} words): use fewer hidden units")
    return n


def board_forward(board, model: Mlp, images: np.ndarray, chunk: int) -> list[np.ndarray]:
    """``golden_forward``'s outputs, computed on ``board`` (a ``host.driver.Board``)."""
    info = board.info
    if info.engine != "mpe" or info.bias != E4M3_BIAS:
        raise LabError(f"the board must have the MPE engine with e4m3 bias {E4M3_BIAS} "
                       f"(it has the {info.engine} engine, bias {info.bias})")
    layers = quantized_layers(model)
    per_batch = images_per_batch(info, model, chunk, len(images))
    outputs = [[] for _ in layers]
    for s in range(0, len(images), per_batch):
        a = golden.encode(images[s:s + per_batch], "e4m3", bias=E4M3_BIAS)
        n = len(a)
        for i, (w, b) in enumerate(layers):
            c = np.broadcast_to(b, (n, len(b)))
            if i == len(layers) - 1:
                outputs[i].append(board.matmul(a, w, c, "fp8", "e4m3", "e4m3", chunk))
                break
            kept = board.matmul(a, w, c, "fp8", "e4m3", "e4m3", chunk, "e4m3", keep=True)
            if not isinstance(a, np.ndarray):
                a.free()
            codes = kept.numpy()                  # back to the host for the ReLU
            outputs[i].append(codes)
            _write_resident(board, kept, relu_codes(codes))
            a = kept
        if not isinstance(a, np.ndarray):
            a.free()
    return [np.concatenate(o) for o in outputs]


def _write_resident(board, tensor, codes: np.ndarray) -> None:
    """Overwrite an on-chip tensor's codes in place: its words are the A layout of a GEMM
    whose K is its N (``hw.schedule.EngineLayout``)."""
    layout = EngineLayout(codes.shape[0], codes.shape[1], 1, board.info.rows)
    words = layout.a(codes)
    assert len(words) == tensor.words, (len(words), tensor.words)
    board.write(BufferId.A, tensor.base * word_stride(layout.word_items),
                words_image(words, "u1"))


@dataclass
class BoardRun:
    network: str
    images: int
    labels: list[int]
    predictions: list[int]
    bit_exact: bool                 # every layer's codes equal the golden model's
    layers_equal: list[bool]
    chunk: int
    per_batch: int
    sim: str | None
    rows: int
    cols: int
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def run_on_board(board, model: Mlp, images, labels, chunk: int, sim=None) -> BoardRun:
    """Inference of ``images`` on ``board`` and by the golden model; their comparison."""
    start = time.perf_counter()
    on_board = board_forward(board, model, images, chunk)
    seconds = time.perf_counter() - start
    reference = golden_forward(model, images, chunk)
    equal = [bool(np.array_equal(x, y)) for x, y in zip(on_board, reference)]
    logits = golden.decode(on_board[-1] & 0xFFFF, golden.DLFLOAT16)
    info = board.info
    return BoardRun("-".join(map(str, model.sizes)), len(images),
                    [int(v) for v in labels], [int(v) for v in np.argmax(logits, axis=1)],
                    all(equal), equal, chunk, images_per_batch(info, model, chunk, len(images)),
                    sim, info.rows, info.cols, seconds)


def on_simulated_board(sim: str, model: Mlp, images, labels, chunk: int) -> BoardRun:
    """``run_on_board`` on the simulated board (``sim.board.simulated_board``: the board
    system's RTL on Icarus or Verilator, a 2x2 array, over a simulated UART)."""
    from host.driver import Board
    from sim.board import ANSWER_TIMEOUT_S, simulated_board
    with simulated_board(sim) as transport:
        board = Board(transport, timeout=ANSWER_TIMEOUT_S)
        return run_on_board(board, model, images, labels, chunk, sim)
