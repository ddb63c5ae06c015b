"""Deep against linear on the synthetic speech data: the default decoder (hidden layers,
dropout) against softmax regression (``n_layers: 0``, the paper's linear baseline), in
the same harness, on the same split.

    python -m supervisor.perf.speech_linear [--trials-per-class 100] [--sample-rate 50]
        [--epochs 20] [--difficulty 0.5]

Livezey et al. (2019) found deep networks beat linear decoders; the generator's default
difficulty is set so that the same holds here.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

# name: hyper-parameters (the rest: the decoder's defaults)
CONFIGS: dict[str, dict[str, Any]] = {
    "softmax regression": {"n_layers": 0, "learning_rate": 1e-3},
    "default decoder": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials-per-class", type=int, default=100)
    parser.add_argument("--sample-rate", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from benchmarks_sci.speech import SpeechBenchmark

    bench = SpeechBenchmark(
        {
            "trials_per_class": args.trials_per_class,
            "sample_rate": args.sample_rate,
            "difficulty": args.difficulty,
        }
    )
    start = time.perf_counter()
    data = bench.load_data(seed=args.seed)
    print(
        f"{len(data.y_train)} training trials of {data.x_train.shape[1]} features "
        f"(generated in {time.perf_counter() - start:.1f} s); {args.epochs} epochs"
    )
    print(f"{'model':<20}{'params':>10}{'val acc':>9}{'best val':>12}{'test acc':>10}{'s':>6}")
    for name, hp in CONFIGS.items():
        model = bench.build_model(hp, seed=args.seed)
        curve: list[float] = []

        def report(_epoch: int, metrics: dict[str, float], curve: list[float] = curve) -> bool:
            curve.append(metrics["val_accuracy"])
            return False

        start = time.perf_counter()
        final = bench.fit(model, data, hp, args.epochs, report)
        print(
            f"{name:<20}{bench.count_params(model):>10,}{100 * final['val_accuracy']:>9.1f}"
            f"{100 * max(curve, default=0.0):>12.1f}{100 * final['test_accuracy']:>10.1f}"
            f"{time.perf_counter() - start:>6.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
