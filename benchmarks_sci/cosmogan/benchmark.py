"""The cosmogan benchmark: the CosmoGAN DCGAN (Mustafa et al. 2017) on convergence maps.

Data are synthetic by default (``synthetic.make_maps``: log-normal fields with a
power-law spectrum and per-map parameters; train, validation and test drawn from
independent streams of the data seed). With ``data_path`` set, maps are read from a
file instead (layout in ``data``) and ``n_train``, ``n_val``, ``n_test`` and
``difficulty`` are ignored. Maps enter the networks through the paper's transform
s = 2x / (x + a) - 1 (``data``); maps in and out of ``predict`` are in that space.
``predict`` generates maps from latent vectors [n, latent_dim], and scores maps (the
``x_*`` of the data) with the discriminator: the probability that each is real.

Metrics are physics, not GAN losses (``physics``): after every epoch the generator
makes as many maps as the validation set holds, from latent vectors fixed for the
trial, which are compared in raw units (the inverse transform) with the validation
maps: ``val_ps_error`` (mean relative error of the power spectrum over log-spaced k
bins), ``val_hist_ks`` (Kolmogorov-Smirnov distance of the pixel distributions) and
``val_score`` = their sum, all to be minimised; ``d_loss`` and ``g_loss`` (training
means) are reported per epoch too. ``test_score`` compares other generated maps with
the test maps once, after training. A diverged trial (non-finite loss) stops at once
and returns NaN metrics. Epoch checkpoints (``checkpoints``): a trial re-run after an
infrastructure failure trains on from its last one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import benchmarks_sci.cosmogan.physics as physics
import benchmarks_sci.cosmogan.synthetic as synthetic
from benchmarks_sci.cosmogan.data import CosmoData, read_file, to_raw, write_file
from benchmarks_sci.datafiles import DataPathOption
from benchmarks_sci.hyperparams import TableChecked
from benchmarks_sci.splits import generate_splits
from supervisor.benchmarks import (
    DIVERGED_AFTER_STEPS,
    Benchmark,
    Direction,
    EpochReport,
    Option,
    checkpoint_of,
)

MAP_SIZES = (64, 128, 256)
_PREDICT_BATCH = 256  # inference only: larger batches are faster and change nothing
_VAL, _TEST, _SAMPLES = range(3)  # evaluation latent streams of a trial
_N_SAMPLES = 4  # generated maps kept per trial by ``artifacts``
_HIST_EDGES = np.linspace(-1.0, 1.0, 51)  # model-space pixel histogram of ``artifacts``
# Finer, for ensembles: the KS distance of two histograms is read at these edges.
_ENSEMBLE_HIST_EDGES = np.linspace(-1.0, 1.0, 401)
_SCORES = ("ps_error", "hist_ks", "score")
_NETWORKS = ("generator", "discriminator")  # a kept model: both, by name


class CosmoGANBenchmark(TableChecked, Benchmark):
    """A DCGAN generating weak-lensing convergence maps, judged by their statistics."""

    name = "cosmogan"
    param_table = "benchmarks_sci.cosmogan.model"  # the hyper-parameters a space file may give
    ensemble_kind = "generative"
    supports_ranks = False  # its own generator/discriminator steps, not model.fit
    # Epoch checkpoints: its own loop saves and resumes them (``checkpoints``).
    metrics: ClassVar[dict[str, Direction]] = {
        "val_score": "minimize",
        "val_ps_error": "minimize",
        "val_hist_ks": "minimize",
        "test_score": "minimize",
    }
    tiny_options: ClassVar[dict[str, Any]] = {
        "map_size": 64,
        "n_train": 16,
        "n_val": 8,
        "n_test": 8,
    }
    # The paper's widths (9M parameters) take seconds per tiny batch on 2 cores.
    tiny_params: ClassVar[dict[str, Any]] = {"g_filters": 8, "d_filters": 8, "batch_size": 8}
    options: ClassVar[dict[str, Option]] = {
        "map_size": Option(256, "map side in pixels (the paper: 256)", choices=MAP_SIZES),
        "n_train": Option(4000, "synthetic training maps", low=2, high=1_000_000),
        "n_val": Option(
            500, "synthetic validation maps (as many are generated per epoch)", low=2, high=100_000
        ),
        "n_test": Option(500, "synthetic test maps", low=2, high=100_000),
        "difficulty": Option(
            synthetic.DEFAULT_DIFFICULTY,
            "0: one cosmology, mildly non-Gaussian; 1: a wide family of spectra and "
            "strongly non-Gaussian maps",
            low=0.0,
            high=1.0,
        ),
        "transform_scale": Option(
            1.0, "a of the transform s = 2x/(x+a) - 1 (x = a maps to 0)", low=1e-12
        ),
        "data_path": DataPathOption("", "an .npz/.h5 file of real maps; empty: synthetic"),
    }

    def load_data(self, seed: int) -> CosmoData:
        size, scale = self.config["map_size"], self.config["transform_scale"]
        if self.config["data_path"]:
            return read_file(Path(self.config["data_path"]), size, scale)
        difficulty = self.config["difficulty"]
        parts = generate_splits(
            seed, self.config, lambda n, s: synthetic.make_maps(n, size, s, difficulty)
        )
        maps = {split: x for split, (x, _) in parts.items()}
        targets = {split: y for split, (_, y) in parts.items()}
        return CosmoData.from_raw(maps, targets, scale, synthetic.PARAM_NAMES)

    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        from benchmarks_sci.cosmogan.model import build_model

        return build_model(params, seed, self.config["map_size"])

    def fit(
        self,
        model: Any,
        data: CosmoData,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        """Train ``model`` (which carries its hyper-parameters: ``params`` is not read)."""
        import benchmarks_sci.cosmogan.checkpoints as checkpoints
        from benchmarks_sci.cosmogan.training import make_step, train_epoch

        ckpt = checkpoint_of(report)
        curve: list[dict[str, float]] = []  # each epoch's reported metrics, for checkpoints
        first = checkpoints.resume(model, ckpt, epochs, curve) if ckpt and epochs > 0 else 0
        val: dict[str, float] = {}
        for entry in curve:  # a re-run trial reports its restored epochs again
            val = {k: entry[f"val_{k}"] for k in _SCORES}
            if report(int(entry["epoch"]), {k: v for k, v in entry.items() if k != "epoch"}):
                first = epochs
                break
        step = make_step(model)
        reference = physics.MapStats.of(to_raw(data.x_val, data.scale))
        # Restored epochs were whole and finite: each trained every batch.
        finite_steps = first * (len(data.x_train) // min(model.hp.batch_size, len(data.x_train)))
        for epoch in range(first, epochs):
            d_loss, g_loss, steps = train_epoch(model, step, data.x_train)
            finite_steps += steps
            diverged = not (math.isfinite(d_loss) and math.isfinite(g_loss))
            val = _nan_scores() if diverged else self._scores(model, data, _VAL, reference)
            metrics = {"d_loss": d_loss, "g_loss": g_loss}
            metrics.update({f"val_{k}": v for k, v in val.items()})
            if diverged:  # after finite steps: the configuration, not the data
                metrics[DIVERGED_AFTER_STEPS] = float(finite_steps)
            curve.append({"epoch": float(epoch), **metrics})
            if report(epoch, metrics) or diverged:
                break
            if ckpt is not None and ckpt.due(epoch, epochs):
                checkpoints.save(model, ckpt, epoch, curve)
        if not val:  # no epoch trained: score the initial generator
            val = self._scores(model, data, _VAL, reference)
        if math.isnan(val["score"]):
            test = _nan_scores()
        else:
            test_ref = physics.MapStats.of(to_raw(data.x_test, data.scale))
            test = self._scores(model, data, _TEST, test_ref)
        return {
            "val_score": val["score"],
            "val_ps_error": val["ps_error"],
            "val_hist_ks": val["hist_ks"],
            "test_score": test["score"],
        }

    def predict(self, model: Any, x: Any) -> np.ndarray:
        """For latent vectors [n, latent_dim]: generated maps, float32 [n, N, N, 1] in model
        space ([-1, 1]). For maps [n, N, N] or [n, N, N, 1] in model space (``x_*`` of the
        data): the discriminator's probability that each is real, float32 [n]."""
        x = np.asarray(x, dtype=np.float32)
        size = model.discriminator.input_shape[1]
        if x.ndim in (3, 4) and x.shape[1:3] == (size, size) and x.shape[3:] in ((), (1,)):
            logits = model.discriminator.predict(
                x.reshape(-1, size, size, 1), batch_size=_PREDICT_BATCH, verbose=0
            )
            logits = np.asarray(logits, np.float64)[:, 0]
            return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # sigmoid
        if x.ndim != 2 or x.shape[1] != model.hp.latent_dim:
            raise ValueError(
                f"expected latent vectors of shape (n, {model.hp.latent_dim}) or maps of "
                f"shape (n, {size}, {size}, 1), got {x.shape}"
            )
        maps = model.generator.predict(x, batch_size=_PREDICT_BATCH, verbose=0)
        return np.asarray(maps, dtype=np.float32)

    def latency_inputs(self, model: Any, data: CosmoData, n: int) -> np.ndarray:
        """Latent vectors: ``latency_ms`` is the time to generate a map."""
        return model.latents(n, _SAMPLES)

    def count_params(self, model: Any) -> int:
        """Parameters of the generator and the discriminator together."""
        return int(model.count_params())

    def model_arrays(self, model: Any) -> dict[str, Any]:
        """Both networks' weights (``keep_models``): the generator makes the maps, the
        discriminator scores them (``predict`` of maps)."""
        return {
            f"{net}_{i:05d}": w
            for net in _NETWORKS
            for i, w in enumerate(getattr(model, net).get_weights())
        }

    def load_model_arrays(self, model: Any, arrays: Mapping[str, Any]) -> None:
        for net in _NETWORKS:
            names = sorted(k for k in arrays if k.startswith(f"{net}_"))
            getattr(model, net).set_weights([arrays[k] for k in names])

    def save_model(self, model: Any, path: Path) -> None:
        """The generator (latent vectors -> maps in model space, as ``predict``), the network
        a trained GAN is run for; the ``.npz`` export holds the discriminator too."""
        model.generator.save(path)

    def artifacts(self, model: Any, data: CosmoData, params: Mapping[str, Any]) -> dict[str, Any]:
        """For the report's GAN panel: a few generated and validation maps (model space,
        [4, N, N]), the mean power spectra (raw units) of the maps generated for scoring
        and of the validation maps, and their pixel histograms (densities, model space)."""
        generated = self.predict(model, model.latents(len(data.x_val), _VAL))
        samples = self.predict(model, model.latents(_N_SAMPLES, _SAMPLES))
        k, ps_generated = physics.power_spectrum(data.raw_maps(generated))
        _, ps_validation = physics.power_spectrum(to_raw(data.x_val, data.scale))
        return {
            "samples": samples[..., 0],
            "validation_samples": data.x_val[:_N_SAMPLES, ..., 0],
            "ps_k": k,
            "ps_generated": ps_generated,
            "ps_validation": ps_validation,
            "hist_edges": _HIST_EDGES,
            "hist_generated": np.histogram(generated, _HIST_EDGES, density=True)[0],
            "hist_validation": np.histogram(data.x_val, _HIST_EDGES, density=True)[0],
        }

    def ensemble_outputs(self, model: Any, data: CosmoData) -> dict[str, Any]:
        """A member's physics statistics on the test split: the mean power spectrum
        (raw units) and pixel histogram (counts, model space) of as many generated maps as
        there are test maps, and the same of the test maps (``ref_*``). Both statistics
        are averages over maps, so those of an ensemble (the members' maps pooled) are the
        members' mean spectrum and summed counts."""
        generated = self.predict(model, model.latents(len(data.x_test), _TEST))
        k, spectrum = physics.power_spectrum(data.raw_maps(generated))
        _, reference = physics.power_spectrum(to_raw(data.x_test, data.scale))
        return {
            "k": k,
            "spectrum": spectrum,
            "ref_spectrum": reference,
            "hist_edges": _ENSEMBLE_HIST_EDGES,
            "hist": np.histogram(np.clip(generated, -1.0, 1.0), _ENSEMBLE_HIST_EDGES)[0],
            "ref_hist": np.histogram(data.x_test, _ENSEMBLE_HIST_EDGES)[0],
        }

    def _scores(
        self, model: Any, data: CosmoData, stream: int, reference: physics.MapStats
    ) -> dict[str, float]:
        """Physics scores of as many generated maps (latent ``stream``) as the reference
        holds, against it."""
        generated = self.predict(model, model.latents(reference.n_maps, stream))
        return physics.compare(physics.MapStats.of(data.raw_maps(generated)), reference)

    def save_data(self, data: CosmoData, path: Path) -> None:
        """Raw maps [n, N, N] and parameters in the documented layout (``data``): .npz, or
        HDF5 for an .h5/.hdf5 path."""
        write_file(data, path)


def _nan_scores() -> dict[str, float]:
    return dict.fromkeys(_SCORES, math.nan)
