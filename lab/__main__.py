"""``python -m lab``: the numerics lab from the command line.

    python -m lab train --recipe hfp8 [--epochs 30 --hidden 128 ...] [--out build/lab]
    python -m lab report [--seeds 5] [--out build/lab]
    python -m lab board --sim verilator [--recipe fp8seb] [--images 4] [--out build/lab]

``train`` writes ``runs/RECIPE-seedSEED.json`` (and ``.npz``, the trained network) into the
output folder; ``report`` trains what the folder does not hold yet and writes
``report.md``, ``results.json`` and the PNG plots; ``board`` runs the trained ``hfp8``
network (the folder's, else a new one) on the simulated board and writes ``board.json``
(``--recipe fp8seb``: the ``fp8seb`` network on the simulated FP8-SEB board,
``board-fp8seb.json``).
Every file is written whole or not at all; bad input is one line on stderr, exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from fp8hw.cli import ArgumentParser, UsageError, run_command
from fp8hw.files import write_text_atomic
from lab.errors import LabError
from lab.recipes import RECIPES
from lab.board import BOARD_FILES
from lab.train import TrainConfig

DEFAULT_OUT = Path("build") / "lab"
BOARD_IMAGES = 4
SIMULATORS = ("icarus", "verilator")       # sim.runner's, without importing the simulators


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"--hidden takes sizes separated by commas, got {text!r}") from None
    return sizes


def _training_options(p, recipe=True, seed=True):
    d = TrainConfig()
    if recipe:
        p.add_argument("--recipe", choices=tuple(RECIPES), default=d.recipe)
    p.add_argument("--hidden", type=_sizes, default=d.hidden,
                   help=f"hidden layer sizes, comma separated (default {d.hidden[0]})")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    if seed:
        p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--chunk", type=int, default=d.chunk,
                   help="hfp8: chunk-based accumulation's chunk length (0: none)")
    p.add_argument("--loss-scale", type=float, default=d.loss_scale,
                   help="static loss scale (default: hfp8 1024, the others 1)")
    p.add_argument("--ways", type=int, default=d.ways, help="fp8seb: the trees' ways")
    p.add_argument("--room", type=int, default=d.room, help="fp8seb: the bias rule's room")
    p.add_argument("--initial-bias", type=int, default=d.initial_bias,
                   help="fp8seb: every tensor's first shared bias (default: settled on "
                   "the tensor's first value)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output folder (default {DEFAULT_OUT})")


def _config(args, **fixed) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    return TrainConfig(**{**values, **fixed}).check()


def _parser(prog="python -m lab"):
    p = ArgumentParser(prog=prog, description="The numerics lab: FP8 training on the "
                       "digits through the golden model, and the formats' claims checked.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    t = sub.add_parser("train", help="train one recipe, save its results and network")
    _training_options(t)
    r = sub.add_parser("report", help="train every recipe, run the experiments, write "
                       "report.md and the plots")
    _training_options(r, recipe=False, seed=False)
    r.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    r.add_argument("--no-ablations", action="store_true",
                   help="skip hfp8 without loss scaling and without chunking")
    b = sub.add_parser("board", help="a trained hfp8 (or fp8seb) network's inference on "
                       "the simulated board, compared with the golden model")
    b.add_argument("--recipe", choices=tuple(BOARD_FILES), default="hfp8",
                   help="hfp8 on the MPE engine (default) or fp8seb on the FP8-SEB engine "
                   "of the network's --ways")
    _training_options(b, recipe=False)
    b.add_argument("--sim", choices=SIMULATORS, required=True)
    b.add_argument("--images", type=int, default=BOARD_IMAGES,
                   help=f"test images to run (default {BOARD_IMAGES})")
    return p


def _prepare(folder: Path) -> None:
    """The output folder exists and is a folder, before any work."""
    if folder.exists() and not folder.is_dir():
        raise LabError(f"{folder}: is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)


def _say(line: str) -> None:
    print(line, flush=True)


def _main(argv=None, prog="python -m lab") -> int:
    args = _parser(prog).parse_args(argv)
    if args.command == "train":
        from lab.train import save_result, train
        config = _config(args)
        _prepare(args.out)
        result = train(config, log=_say)
        json_path, _ = save_result(result, args.out)
        _say(f"{config.recipe}: test accuracy {100 * result.final_accuracy:.2f}% after "
             f"{config.epochs} epochs ({result.seconds:.1f} s) -> {json_path}")
    elif args.command == "report":
        from lab.report import report
        config = _config(args, recipe="fp32")
        if not 1 <= args.seeds <= 100:
            raise LabError(f"--seeds must be 1..100, got {args.seeds}")
        _prepare(args.out)
        path = report(args.out, config, args.seeds, not args.no_ablations, log=_say)
        _say(f"report -> {path}")
    else:
        _board(args)
    return 0


def _board(args) -> None:
    from lab.board import on_simulated_board, seb_biases
    from lab.data import load_digits
    from lab.train import load_result, run_name, save_result, train
    config = _config(args)
    board_file = BOARD_FILES[config.recipe]
    if not 1 <= args.images <= 359:
        raise LabError(f"--images must be 1..359 (the test images), got {args.images}")
    _prepare(args.out)
    data = load_digits()
    try:
        result = load_result(args.out, run_name(config))
        if result.config != config:
            raise LabError("other settings")
        _say(f"the trained network: {args.out / 'runs' / run_name(config)}")
    except LabError:
        result = train(config, data, log=_say)
        save_result(result, args.out)
    images, labels = data.x_test[:args.images], data.y_test[:args.images]
    seb = config.recipe == "fp8seb"
    _say(f"{args.images} test images on the simulated board ({args.sim}"
         f"{f', the FP8-SEB engine of {config.ways}-way trees' if seb else ''}) ...")
    run = on_simulated_board(args.sim, result.model, images, labels, config.chunk,
                             seb_biases(result.biases) if seb else None, config.ways)
    write_text_atomic(args.out / board_file, json.dumps(run.to_json(), indent=1) + "\n")
    _say(f"board: {run.network} network, {run.images} images in {run.seconds:.1f} s "
         f"({run.per_batch} a batch), predictions {run.predictions}, labels {run.labels}; "
         f"every layer equals the golden model's bits: {'yes' if run.bit_exact else 'NO'} "
         f"-> {args.out / board_file}")
    if not run.bit_exact:
        raise LabError(f"the board's results differ from the golden model's "
                       f"(layers equal: {run.layers_equal})")


def main(argv=None, prog="python -m lab") -> int:
    return run_command(lambda a: _main(a, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
