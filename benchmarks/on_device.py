"""On-device engines beside the others, at batch 1: decode throughput, one step, file sizes.

    python benchmarks/on_device.py [--quick] [--json] [--threads N]
    python benchmarks/on_device.py --operators DIR [DIR ...]

One question at a time, as a phone app asks: the same weights (V = 1000, E = 128,
H = 256, one layer, EOS never the argmax, so every answer takes max_len steps) on

    keras_impl       Keras 3 on TensorFlow, its compiled encode and decode step
    torch_impl       PyTorch, eager, packed
    onnx_impl        ONNX Runtime, the exported graphs
    litert_impl      LiteRT's interpreter, the programs converted from keras_impl's model
    executorch_impl  ExecuTorch's runtime, the programs lowered from torch_impl's (XNNPACK)

and, for each, with every runtime on ``--threads`` threads:

    greedy      sentences per second, ``greedy_decode`` of one question at a time
    beam        sentences per second, ``beam_decode`` with beam 4 (the on-device programs
                exported with batch 4, so the four hypotheses take one call a step)
    step        one decoder step at batch 1 through the engine's public ``decode``
                (checks, padding to the fixed shape, the call), in microseconds
    raw step    the runtime's own call on the same step, where the engine has one (the
                ONNX session, the LiteRT signature runner, the ExecuTorch method)

and the files each export writes, in bytes.  The on-device programs are exported
here (LiteRT in seconds, ExecuTorch's lowering in tens of seconds: it grows with the
source length, 20 here).  Figures are medians of interleaved rounds
(``benchmarks.common.interleaved_ms``); docs/performance.md records a run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# `python benchmarks/x.py` puts benchmarks/ on sys.path; the imports need the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import (
    benchmark_parser,
    interleaved_ms,
    load_average,
    machine,
    prepare_environment,
    print_json_line,
)
from benchmarks.decode import MAX_LEN, shared_weights, sources
from shared import BOS, configure_threads
from shared.app.backends import load_exported

ENGINES = ("keras_impl", "torch_impl", "onnx_impl", "litert_impl", "executorch_impl")
BEAM = 4
SOURCE_LENGTH = 20  # benchmarks.decode's questions: 10 to 20 tokens


def export(folder: Path, config, weights) -> tuple[dict, dict]:
    """{engine: (module, model at batch 1, model at batch BEAM)} and the files' sizes."""
    import executorch_impl
    import keras_impl
    import litert_impl
    import onnx_impl
    import torch_impl
    from keras_impl.on_device import export_litert
    from shared.onnx.export import export_onnx
    from torch_impl.on_device import export_executorch

    models, sizes = {}, {}
    for module in (keras_impl, torch_impl, onnx_impl):
        model = module.build_model(config)
        module.import_weights(model, weights)
        models[module.__name__] = (module, model, model)
    export_onnx(weights, config, folder / "onnx")
    sizes["onnx_impl"] = _sizes(folder / "onnx")
    keras_model, torch_model = models["keras_impl"][1], models["torch_impl"][1]
    for name, module, write, source in (
            ("litert_impl", litert_impl, export_litert, keras_model),
            ("executorch_impl", executorch_impl, export_executorch, torch_model)):
        loaded = []
        for batch in (1, BEAM):
            out = folder / f"{name}-{batch}"
            write(source, out, batch_size=batch, max_source_length=SOURCE_LENGTH)
            loaded.append(load_exported(module.NAME, out))
        sizes[name] = _sizes(folder / f"{name}-1")
        models[name] = (module, *loaded)
    return models, sizes


def _sizes(folder: Path) -> dict:
    return {path.name: path.stat().st_size for path in sorted(folder.iterdir())
            if path.suffix in (".onnx", ".tflite", ".pte")}


def raw_step(name: str, model, state):
    """The runtime's own call of one decoder step at batch 1, or None where there is none."""
    tokens = np.full(1, BOS)
    if name == "onnx_impl":
        feeds = {"tgt_in": tokens[:, None], **dict(zip(("h", "c"), state, strict=True))}
        return lambda: model.decoder.run(None, feeds)
    if name == "litert_impl":
        runner = model.interpreters["decoder"].get_signature_runner("decode")
        feeds = {"tokens": tokens.astype(np.int32), **dict(zip(("h", "c"), state, strict=True))}
        return lambda: runner(**feeds)
    if name == "executorch_impl":
        import torch

        method = model.modules["decoder"]
        inputs = [torch.from_numpy(tokens.astype(np.int32)), *map(torch.from_numpy, state)]
        return lambda: method.forward(inputs)
    return None


def run(quick: bool = False, threads: int = 1) -> tuple[dict, dict, dict]:
    """(figures, ms per contender, sizes); see the module docstring."""
    configure_threads(threads, 1)  # torch, TensorFlow, and the runtimes' sessions built next
    config, weights = shared_weights()
    questions = sources(4 if quick else 16)                                # (N, S)
    with tempfile.TemporaryDirectory(prefix="seq2seq-on-device-") as folder:
        models, sizes = export(Path(folder), config, weights)
        contenders = {}
        for name, (module, single, batched) in models.items():
            state = module.encode(single, questions[:1])                  # each (1, 1, H)
            contenders[f"{name} greedy"] = lambda m=module, x=single: [
                m.greedy_decode(x, questions[i : i + 1], MAX_LEN) for i in range(len(questions))]
            contenders[f"{name} beam"] = lambda m=module, x=batched: [
                m.beam_decode(x, questions[i : i + 1], BEAM, MAX_LEN)
                for i in range(len(questions))]
            contenders[f"{name} step"] = lambda m=module, x=single, s=state: m.decode(
                x, np.full((1, 1), BOS), s)
            raw = raw_step(name, single, state)
            if raw is not None:
                contenders[f"{name} raw step"] = raw
        rounds, warmup = (3, 1) if quick else (9, 2)
        ms = interleaved_ms(contenders, rounds, 1, warmup)
        tokens = {name: module.greedy_decode(single, questions, MAX_LEN)
                  for name, (module, single, _) in models.items()}
    agree = {name: float((found == tokens["torch_impl"]).all(axis=1).mean())
             for name, found in tokens.items()}
    figures = {}
    for name in models:
        figures[f"{name}_greedy_sent_per_s"] = len(questions) / (ms[f"{name} greedy"] / 1e3)
        figures[f"{name}_beam_sent_per_s"] = len(questions) / (ms[f"{name} beam"] / 1e3)
        figures[f"{name}_step_us"] = 1e3 * ms[f"{name} step"]
        if f"{name} raw step" in ms:
            figures[f"{name}_raw_step_us"] = 1e3 * ms[f"{name} raw step"]
    return figures, agree, sizes


def report(figures: dict, agree: dict, sizes: dict) -> None:
    print(f"{'engine':<16} {'greedy sent/s':>14} {'beam 4 sent/s':>14} {'step us':>9} "
          f"{'raw step us':>12}  files (bytes)")
    for name in ENGINES:
        raw = figures.get(f"{name}_raw_step_us")
        files = ", ".join(f"{file} {size:,}" for file, size in sizes.get(name, {}).items())
        print(f"{name:<16} {figures[f'{name}_greedy_sent_per_s']:14.1f} "
              f"{figures[f'{name}_beam_sent_per_s']:14.1f} {figures[f'{name}_step_us']:9.0f} "
              f"{'-' if raw is None else f'{raw:.0f}':>12}  {files or '-'}")
    print("same greedy tokens as torch_impl: " + ", ".join(
        f"{name} {share:.0%}" for name, share in agree.items()))


def operators(folders: list[str]) -> None:
    """Print the operators each program of each export folder calls, as its engine lists them."""
    from shared.ondevice.folder import runtime_of

    for folder in folders:
        runtime = runtime_of(folder)
        model = load_exported(runtime, folder)
        for part, calls in model.operators.items():
            listed = ", ".join(f"{name} {count}" for name, count in calls.items())
            print(f"{folder} {part} ({runtime}, {sum(calls.values())} calls): {listed}")


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, quick="fewer questions and repeats")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per op for every engine (default 1: a phone's core)")
    parser.add_argument("--operators", nargs="+", metavar="DIR",
                        help="only list the operators of these export folders' programs")
    args = parser.parse_args(argv)
    prepare_environment()
    if args.operators:
        operators(args.operators)
        return 0
    import keras_impl  # noqa: F401  (both frameworks loaded before the pools are set)
    import torch_impl  # noqa: F401

    load_before = load_average()
    figures, agree, sizes = run(quick=args.quick, threads=args.threads)
    print(f"machine: {machine()}, load_1min before the run {load_before:.2f}")
    print(f"batch 1, max_len {MAX_LEN}, beam {BEAM}, {args.threads} thread(s) per engine")
    report(figures, agree, sizes)
    if args.json:
        print_json_line(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
