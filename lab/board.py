"""A trained network's inference on the board (or the simulated board), through the host
driver, checked bit for bit against the golden model: an ``hfp8`` network on the MPE
engine, an ``fp8seb`` one on the FP8-SEB engine.

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

``fp8seb`` the same way on the FP8-SEB engine: weights as ``fp8seb`` codes, the bias row
as ``fp30`` codes, the hidden layer quantized on chip by ``quant30`` at its shared bias
(``out_bias``) and kept, ReLU on the host (the sign bit again), the last layer's ``fp30``
sums read back. Each tensor's shared bias is the one its last training step used (the
run's ``biases``): the scheme's own rule, a tensor's bias comes from its previous use.
The board's tracker reports the hidden layer's ``next_bias`` as well (``BoardRun``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

import golden
from host.gemm import lane_codes
from hw.schedule import EngineLayout, engine_chunk, word_stride, words_image
from hw.soc.buffers import BufferId
from lab.errors import LabError
from lab.hfp8 import E4M3_BIAS
from lab.mlp import Mlp

SIGN = 0x80
# What python -m lab board [--recipe fp8seb] writes; the report shows those present.
BOARD_FILES = {"hfp8": "board.json", "fp8seb": "board-fp8seb.json"}


def relu_codes(codes: np.ndarray) -> np.ndarray:
    """ReLU of e4m3 or fp8seb codes: a code with its sign bit set (a negative value, -0)
    becomes +0."""
    return np.where(codes & SIGN, 0, codes).astype(np.uint8)


def seb_biases(biases: dict) -> dict[str, int]:
    """Each tensor's shared bias for inference: the one its last training step used."""
    try:
        return {name: int(steps[-1]) for name, steps in biases.items()}
    except (TypeError, IndexError) as e:
        raise LabError(f"the run's shared biases are unreadable: {e}") from None


def _seb_codes(x, bias: int) -> np.ndarray:
    """``x`` as fp8seb codes at ``bias``, as the fp8seb recipe quantizes (rne, saturating)."""
    return golden.encode(x, golden.FP8SEB, bias=bias, rounding="rne", overflow="sat")


def seb_layers(model: Mlp, biases: dict[str, int]):
    """The fp8seb network as the board takes it: (weight codes, their bias, fp30 codes of
    the bias row) a layer."""
    layers = []
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        bias = biases[f"w{i}"]
        layers.append((_seb_codes(w, bias), bias,
                       golden.encode(b, golden.FP30, rounding="rne", overflow="sat")
                       .astype(np.uint32)))
    return layers


def seb_golden_forward(model: Mlp, biases: dict[str, int], images, ways: int):
    """Each hidden layer's fp8seb codes before the ReLU (at its activation's bias) and the
    output layer's fp30 sums, by the golden model with ``ways``-way trees."""
    a, bias_a = _seb_codes(images, biases["x0"]), biases["x0"]
    outputs = []
    layers = seb_layers(model, biases)
    for i, (w, bias_w, b) in enumerate(layers):
        c = np.broadcast_to(b, (len(a), len(b)))
        if i == len(layers) - 1:
            outputs.append(golden.seb_matmul(a, w, c, bias_a, bias_w, ways).C)
            break
        out_bias = biases[f"x{i + 1}"]
        outputs.append(golden.seb_matmul(a, w, c, bias_a, bias_w, ways, out_bias).Y)
        a, bias_a = relu_codes(outputs[-1]), out_bias
    return outputs


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
    R, W = info.rows, lane_codes(info)
    sizes = model.sizes

    def fits(n):
        first = EngineLayout(n, sizes[0], sizes[1], R, engine_chunk("fp8", chunk), W).a_words
        outs = [EngineLayout(n, 1, h, R, 0, W).out_words for h in sizes[1:-1]]
        need = [first + outs[0]] + [a + b for a, b in zip(outs, outs[1:])]
        return max(need) <= info.a_words

    n = wanted
    while n > 1 and not fits(n):
        n -= 1
    if not fits(n):
        raise LabError(f"even one image's layers do not fit the board's A buffer "
                       f"({info.a_words} words): use fewer hidden units")
    return n


def board_forward(board, model: Mlp, images: np.ndarray, chunk: int,
                  biases: dict[str, int] | None = None) -> list[np.ndarray]:
    """``golden_forward``'s outputs, computed on ``board`` (a ``host.driver.Board``); with
    ``biases`` (an fp8seb network's), ``seb_golden_forward``'s on the FP8-SEB engine."""
    info = board.info
    seb = biases is not None
    if seb and info.engine != "seb":
        raise LabError(f"an fp8seb network needs the FP8-SEB engine (the board has the "
                       f"{info.engine} engine)")
    if not seb and (info.engine != "mpe" or info.bias != E4M3_BIAS):
        raise LabError(f"the board must have the MPE engine with e4m3 bias {E4M3_BIAS} "
                       f"(it has the {info.engine} engine, bias {info.bias})")
    layers = seb_layers(model, biases) if seb else \
        [(w, None, b) for w, b in quantized_layers(model)]
    per_batch = images_per_batch(info, model, chunk, len(images))
    outputs = [[] for _ in layers]
    for s in range(0, len(images), per_batch):
        batch = images[s:s + per_batch]
        if seb:
            a, bias_a = _seb_codes(batch, biases["x0"]), biases["x0"]
        else:
            a, bias_a = golden.encode(batch, "e4m3", bias=E4M3_BIAS), None
        n = len(a)
        for i, (w, bias_w, b) in enumerate(layers):
            c = np.broadcast_to(b, (n, len(b)))
            last = i == len(layers) - 1
            if seb:
                out_bias = None if last else biases[f"x{i + 1}"]
                got = board.matmul(a, w, c, "fp8seb", bias_a=bias_a, bias_b=bias_w,
                                   out_bias=out_bias, keep=not last)
            else:
                got = board.matmul(a, w, c, "fp8", "e4m3", "e4m3", chunk,
                                   "none" if last else "e4m3", keep=not last)
            if not isinstance(a, np.ndarray):
                a.free()
            if last:
                outputs[i].append(got.C if seb else got)
                break
            codes = got.numpy()                   # back to the host for the ReLU
            outputs[i].append(codes)
            _write_resident(board, got, relu_codes(codes))
            a = got
            if seb:
                bias_a = out_bias
    return [np.concatenate(o) for o in outputs]


def _write_resident(board, tensor, codes: np.ndarray) -> None:
    """Overwrite an on-chip tensor's codes in place: its words are the A layout of a GEMM
    whose K is its N (``hw.schedule.EngineLayout``)."""
    layout = EngineLayout(codes.shape[0], codes.shape[1], 1, board.info.rows, 0,
                          lane_codes(board.info))
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
    recipe: str = "hfp8"
    ways: int = 0                   # the FP8-SEB engine's trees (0: the MPE engine)
    biases: dict | None = None      # fp8seb: each tensor's shared bias

    def to_json(self) -> dict:
        return asdict(self)


def run_on_board(board, model: Mlp, images, labels, chunk: int, sim=None,
                 biases: dict | None = None) -> BoardRun:
    """Inference of ``images`` on ``board`` and by the golden model; their comparison.
    ``biases``: an fp8seb network's tensors' shared biases (``seb_biases``); None for
    hfp8. ``chunk`` is hfp8's (the FP8-SEB engine has no chunking: 0 for fp8seb)."""
    if biases is not None:
        chunk = 0
    start = time.perf_counter()
    on_board = board_forward(board, model, images, chunk, biases)
    seconds = time.perf_counter() - start
    info = board.info
    if biases is None:
        reference = golden_forward(model, images, chunk)
        logits = golden.decode(on_board[-1] & 0xFFFF, golden.DLFLOAT16)
    else:
        reference = seb_golden_forward(model, biases, images, info.ways)
        logits = golden.decode(on_board[-1], golden.FP30)
    equal = [bool(np.array_equal(x, y)) for x, y in zip(on_board, reference)]
    return BoardRun("-".join(map(str, model.sizes)), len(images),
                    [int(v) for v in labels], [int(v) for v in np.argmax(logits, axis=1)],
                    all(equal), equal, chunk, images_per_batch(info, model, chunk, len(images)),
                    sim, info.rows, info.cols, seconds,
                    "hfp8" if biases is None else "fp8seb",
                    0 if biases is None else lane_codes(info), biases)


def on_simulated_board(sim: str, model: Mlp, images, labels, chunk: int,
                       biases: dict | None = None, ways: int = 0) -> BoardRun:
    """``run_on_board`` on the simulated board (``sim.board.simulated_board``: the board
    system's RTL on Icarus or Verilator, a 2x2 array, over a simulated UART): the MPE
    engine, or with ``biases`` the FP8-SEB engine of ``ways``-way trees."""
    from host.driver import Board
    from sim.board import ANSWER_TIMEOUT_S, SIM_SEB_BOARD, simulated_board
    # SIM_BOARD's 2x2 array (the default), with the FP8-SEB engine for an fp8seb network.
    params = {} if biases is None else dict(SIM_SEB_BOARD, ways=ways)
    with simulated_board(sim, **params) as transport:
        board = Board(transport, timeout=ANSWER_TIMEOUT_S)
        return run_on_board(board, model, images, labels, chunk, sim, biases)
