"""The contract every benchmark implements (checked by ``supervisor.benchmarks.contract``).

Required: the class attributes ``name`` and ``metrics`` and the methods ``load_data``,
``build_model`` and ``fit``. Everything else is optional; a feature that needs a missing
method says so when the space file is validated (``ensemble:`` without ``predict``), or
leaves a measurement out (``latency_ms`` without ``predict``, ``n_params`` when the model
has no ``count_params``), never failing a trial for it.

Who calls what, and where:

* The driver (login node, no TensorFlow) imports the class, checks it against the
  contract and reads only class attributes: ``name``, ``metrics`` and ``options``, and
  calls ``validate_options`` and ``check_param``. Modules that define a benchmark must
  therefore import only numpy (and the standard library) at the top; Keras is imported
  inside the methods that run on workers.
* A worker calls, per trial: ``Benchmark(options)`` once per worker and options,
  ``load_data(seed)`` once per worker (the supervisor caches the result),
  then ``build_model(params, seed)`` and ``fit(...)`` for every trial.
* Optional: ``predict`` (ensembles, the ``latency_ms`` metric), ``save_data`` (exporting a
  data set), ``count_params`` (the ``n_params`` metric; by default the model's own
  ``count_params()`` where it has one, as Keras models do), ``ensemble_outputs`` and
  ``artifacts`` (what a trial keeps in the run directory, e.g. a confusion matrix),
  ``model_arrays`` and ``load_model_arrays`` (a trained model kept and loaded back:
  ``keep_models``; by default a model's ``get_weights``/``set_weights``, as Keras has).
* Epoch checkpoints: the ``report`` a worker passes to ``fit`` may carry a
  ``Checkpoint`` (``checkpoint_of(report)``). ``keras_fit.fit_reporting`` uses it: it
  resumes from the last one and saves one every N epochs, so a trial re-run after an
  infrastructure failure continues where it was. A ``fit`` with a loop of its own may
  ignore it (declare ``checkpoints = False``): such a trial restarts from epoch 0.
* The conformance suite (tests/benchmarks/test_conformance.py) runs every registered
  benchmark with ``tiny_options`` and ``tiny_params``; ``build_model({}, seed)`` must
  work too (every hyper-parameter has a default: ``supervisor calibrate`` uses them).

Data objects returned by ``load_data`` expose ``x_train``, ``x_val``, ``x_test`` (model
inputs; ``len(x_train)`` is the number of training samples per epoch) and ``y_train``,
``y_val``, ``y_test`` (targets; ``None`` where a task has none).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Direction = Literal["minimize", "maximize"]
EnsembleKind = Literal["classification", "sequence", "generative", "regression"]

# Called by ``fit`` after every epoch with (epoch index from 0, metrics of that epoch).
# Returns True when the supervisor wants the trial stopped (pruning).
EpochReport = Callable[[int, dict[str, float]], bool]

# A metric a diverged training adds to the epoch it diverged in: the training steps whose
# loss was finite before. More than 0 shows that data and model give finite numbers, so
# the configuration diverged (a learning rate too high), not the code or the data (NaN
# inputs, which are non-finite from the first step): fail fast then goes on.
DIVERGED_AFTER_STEPS = "diverged_after_steps"


@runtime_checkable
class Dataset(Protocol):
    """What ``load_data`` returns: model inputs and targets of the three splits.

    ``len(x_train)`` is the number of training samples per epoch; a target is ``None``
    where a task has none (a GAN). Ensembles and latency probes read ``x_val``/``x_test``.
    """

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any


class MissingMethod(NotImplementedError):
    """A feature called an optional method the benchmark does not implement."""

    def __init__(self, cls: type, method: str) -> None:
        name = getattr(cls, "name", cls.__name__)
        super().__init__(f"benchmark {name!r} does not implement the optional {method}()")
        self.method = method


class OptionError(ValueError):
    """A benchmark option is wrong; ``key`` names it (e.g. ``task``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Option:
    """One benchmark option: its default, its type and, optionally, allowed values/range."""

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None

    def check(self, key: str, value: Any) -> Any:
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) != isinstance(self.default, bool) or not isinstance(
            value, kind
        ):
            raise OptionError(key, f"expected {kind.__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(key, f"expected a finite number, got {value!r}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise OptionError(key, f"expected one of {allowed}, got {value!r}")
        if self.low is not None and value < self.low:
            raise OptionError(key, f"must be >= {self.low}, got {value!r}")
        if self.high is not None and value > self.high:
            raise OptionError(key, f"must be <= {self.high}, got {value!r}")
        return value


class Benchmark(abc.ABC):
    """A science model the supervisor can tune. Required: ``name``, ``metrics``,
    ``load_data``, ``build_model`` and ``fit``; the rest has defaults."""

    #: Registry name, e.g. ``"weather"``.
    name: ClassVar[str]
    #: Every metric ``fit`` returns, with its natural direction. Objectives must name one
    #: of these or a cost metric the supervisor measures itself.
    metrics: ClassVar[dict[str, Direction]]
    #: Options of the benchmark (task, data sizes, difficulty, data path ...), set in the
    #: space file's ``benchmark.options``; optional.
    options: ClassVar[dict[str, Option]] = {}
    #: Options for a run of a few seconds on tiny data (conformance suite, calibrate).
    tiny_options: ClassVar[dict[str, Any]] = {}
    #: Hyper-parameters of a small model for the same purpose ({} = the defaults), where
    #: the paper's model takes minutes even on tiny data.
    tiny_params: ClassVar[dict[str, Any]] = {}
    #: Whether a trial may train on several MPI ranks (``ranks: K``, see
    #: ``supervisor.execution.ranks``): ``fit`` trains the Keras model of ``build_model`` with
    #: ``model.fit`` on in-memory arrays. Set False for custom training loops.
    supports_ranks: ClassVar[bool] = True
    #: Whether ``fit`` saves and resumes epoch checkpoints (``checkpoint_of(report)``), as
    #: ``keras_fit.fit_reporting`` does. False: a re-run trial restarts from epoch 0.
    checkpoints: ClassVar[bool] = True
    #: How the members of a deep ensemble of this benchmark combine (``supervisor.ensemble``):
    #: "classification" (``predict`` gives class probabilities; members' are averaged),
    #: "sequence" (per-step probabilities, averaged, then decoded: see ``decode_reads``),
    #: "generative" (generated samples pool; their physics statistics form bands),
    #: "regression" (``predict`` gives [n, 2]: a Gaussian's mean and variance; members
    #: form a mixture) or None: the benchmark has no ensembles.
    ensemble_kind: ClassVar[EnsembleKind | None] = None

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.config = self.validate_options(options or {})

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Return the full option dict (defaults filled in); raise OptionError on bad input."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise OptionError(unknown[0], f"unknown option for benchmark {cls.name!r}")
        resolved = {k: opt.default for k, opt in cls.options.items()}
        for key, value in options.items():
            resolved[key] = cls.options[key].check(key, value)
        return resolved

    @classmethod
    def check_param(cls, name: str, value: Any) -> None:
        """Raise ValueError (one line, naming the parameter) for a hyper-parameter name or
        value ``build_model`` and ``fit`` would refuse. The space file is checked with it
        before anything runs: every fixed value, a range's two ends, every choice; a
        misspelled name would otherwise start a campaign whose every trial fails.
        Optional: by default every name and value is accepted."""
        return None  # accepted: the plugin's build_model and fit have the last word

    @abc.abstractmethod
    def load_data(self, seed: int) -> Any:
        """Generate or read the data set (train/validation/test). Called once per worker."""

    @abc.abstractmethod
    def build_model(self, params: Mapping[str, Any], seed: int) -> Any:
        """Build and compile a fresh model for one trial's parameters."""

    @abc.abstractmethod
    def fit(
        self,
        model: Any,
        data: Any,
        params: Mapping[str, Any],
        epochs: int,
        report: EpochReport,
    ) -> dict[str, float]:
        """Train for up to ``epochs`` epochs; call ``report`` after each epoch and stop
        early when it returns True. Return the final validation metrics (keys of
        ``metrics``)."""

    # -- optional: a feature that needs one of these checks ``contract.provides`` first --

    def predict(self, model: Any, x: Any) -> Any:
        """Predictions for inputs ``x`` (class probabilities for classifiers). Optional:
        ensembles and the ``latency_ms`` metric need it."""
        raise MissingMethod(type(self), "predict")

    def save_data(self, data: Any, path: Path) -> None:
        """Write ``data`` (from ``load_data``) to ``path`` in the documented real-data
        layout, so that the option ``data_path: path`` loads the same arrays back. Users
        export the synthetic set with it; the conformance suite round-trips it. Optional."""
        raise MissingMethod(type(self), "save_data")

    def count_params(self, model: Any) -> int | None:
        """Parameters of a built model (the ``n_params`` cost metric): by default the
        model's own ``count_params()`` (Keras), else None: the metric is left out."""
        counter = getattr(model, "count_params", None)
        return int(counter()) if callable(counter) else None

    def ensemble_outputs(self, model: Any, data: Any) -> dict[str, Any]:
        """What an ensemble member keeps after training, saved by the worker when the
        campaign builds ensembles: by default its predictions on the validation inputs
        (``val``, used to select members) and on the test inputs (``test``, used to judge
        the ensemble), the targets ``y_val`` and ``y_test``, and a digest of each split's
        inputs (``x_val_digest``, ``x_test_digest``): members trained with other benchmark
        options (a resume changed a noise level) may share the targets but not the inputs,
        and their predictions are then not of one data set."""
        return {
            "val": self.predict(model, data.x_val),
            "test": self.predict(model, data.x_test),
            "y_val": data.y_val,
            "y_test": data.y_test,
            "x_val_digest": inputs_digest(data.x_val),
            "x_test_digest": inputs_digest(data.x_test),
        }

    def latency_inputs(self, model: Any, data: Any, n: int) -> Any:
        """The ``n`` inputs the ``latency_ms`` metric times ``predict`` on: by default the
        first validation inputs. A model used on other inputs says which (a GAN generates
        from latent vectors; its discriminator only trains it)."""
        return data.x_val[:n]

    def model_arrays(self, model: Any) -> dict[str, Any]:
        """A trained model's state as named arrays (``keep_models``: the best trials'
        models are kept in the run directory). By default the model's ``get_weights()``
        (Keras: every variable, batch-norm statistics included) by position. A model of
        several networks, or with other state, overrides this and ``load_model_arrays``."""
        weights = getattr(model, "get_weights", None)
        if not callable(weights):
            raise MissingMethod(type(self), "model_arrays")
        return {f"weight_{i:05d}": w for i, w in enumerate(weights())}

    def load_model_arrays(self, model: Any, arrays: Mapping[str, Any]) -> None:
        """Put ``model_arrays``' arrays into a model fresh from ``build_model`` with the
        same parameters and seed: by default its ``set_weights`` (in their saved order)."""
        setter = getattr(model, "set_weights", None)
        if not callable(setter):
            raise MissingMethod(type(self), "load_model_arrays")
        setter([arrays[name] for name in sorted(arrays)])

    def save_model(self, model: Any, path: Path) -> None:
        """Write a trained model to ``path`` (``.keras``) in its framework's own format, to
        load without the supervisor (``supervisor export RUN --model N``): by default
        Keras' ``model.save``. A model of several networks writes the one users run."""
        save = getattr(model, "save", None)
        if not callable(save):
            raise MissingMethod(type(self), "save_model")
        save(path)

    def artifacts(self, model: Any, data: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        """Per-trial arrays worth keeping after ``fit`` (name -> numpy array), saved by
        the worker in the run directory; none by default."""
        return {}


def inputs_digest(x: Any) -> Any:
    """A 16-byte digest (uint8 array) of inputs ``x`` of one array, None where they are not
    (a benchmark's own structure): the ensemble then cannot compare its members' inputs."""
    import hashlib

    import numpy as np

    try:
        a = np.ascontiguousarray(x)
    except (TypeError, ValueError):
        return None
    if a.dtype.hasobject:
        return None
    h = hashlib.blake2b(f"{a.dtype.str}{a.shape}".encode(), digest_size=16)
    h.update(a.tobytes())  # a copy; inputs are at most a few hundred MB, hashed once
    return np.frombuffer(h.digest(), dtype=np.uint8)
