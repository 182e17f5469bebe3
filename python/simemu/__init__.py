"""simemu: build, train and validate fast generative emulators of simulators.

numpy arrays in and out, the same numbers as the ``simemu`` command line: both
run the same Rust libraries. A first example::

    import simemu
    maps = simemu.simulate("convergence", 500, options={"size": 64}, seed=1)
    ell, power = simemu.power_spectrum(maps, angle_deg=3.5)
    emulator = simemu.load("builtin:convergence-64")
    fakes = emulator.generate(500, seed=2)
    result = simemu.validate(maps, fakes, angle_deg=3.5)
    print(result.summary())

Every error is a :class:`simemu.Error`; bad input is also a ``ValueError``
(:class:`InvalidInputError`), a missing file a ``FileNotFoundError``
(:class:`NotFoundError`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _simemu

__version__: str = _simemu.version()

__all__ = [
    "Error",
    "InvalidInputError",
    "NotFoundError",
    "Dataset",
    "Generator",
    "Validation",
    "plugins",
    "load_plugin",
    "set_threads",
    "simulate",
    "statistic",
    "power_spectrum",
    "minkowski",
    "peaks",
    "pixel_pdf",
    "validate",
    "open_dataset",
    "write_dataset",
    "load",
]


class Error(Exception):
    """Base of every error simemu raises."""


class InvalidInputError(Error, ValueError):
    """An argument, array, option or parameter that cannot be used as given."""


class NotFoundError(Error, FileNotFoundError):
    """A file or directory that does not exist."""


_KINDS = {
    "value": InvalidInputError,
    "bad_file": InvalidInputError,
    "not_found": NotFoundError,
}


def _call(function, *args, **kwargs):
    """Calls into the extension, turning its errors into simemu's classes."""
    try:
        return function(*args, **kwargs)
    except _simemu.RawError as e:
        kind, message = e.args
        raise _KINDS.get(kind, Error)(message) from None


PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Any


def _float_array(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a float32 or float64 array, without a copy where it is one."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and array.dtype.itemsize in (4, 8):
        return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind in "iub":
        return array.astype(np.float64)
    raise InvalidInputError(f"{what}: dtype {array.dtype} is not numeric")


def _samples(values: ArrayLike, what: str, sample_ndim: Optional[int] = None) -> Tuple[np.ndarray, bool]:
    """A stack of samples (N, ...) and whether a single sample was given."""
    array = _float_array(values, what)
    if sample_ndim is not None:
        if array.ndim == sample_ndim:
            return array[np.newaxis], True
        if array.ndim != sample_ndim + 1:
            raise InvalidInputError(
                f"{what}: expected one sample of {sample_ndim} dimensions or a stack of them, "
                f"got an array of shape {array.shape}"
            )
    elif array.ndim < 2:
        raise InvalidInputError(f"{what}: expected samples (N, ...), got shape {array.shape}")
    return array, False


def plugins() -> Dict[str, List[dict]]:
    """The registered plugins with their parameters and options, as ``simemu list --json``."""
    return json.loads(_call(_simemu.plugins_json))


def load_plugin(path: PathLike) -> None:
    """Loads a dynamic plugin (a shared library built against this simemu).

    A refused library has already run its constructors: load only libraries
    you trust, built with the same toolchain and simemu version.
    """
    _call(_simemu.load_plugin, os.fspath(path))


def set_threads(threads: int) -> None:
    """Sets the worker threads of all later work (the CLI's ``--threads``).

    It can be set once per process, before the first parallel call.
    """
    _call(_simemu.set_threads, int(threads))


def _stack_result(fields: list, single: bool = False):
    """One array for a single field, else a dict of arrays by field name."""
    arrays = {name: array[0] if single else array for name, array, _attrs in fields}
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    return arrays


def simulate(
    name: str,
    count: int = 1,
    params: Optional[Mapping[str, float]] = None,
    options: Optional[Mapping[str, Any]] = None,
    seed: int = 0,
    grid: Optional[Mapping[str, Tuple[float, float, int]]] = None,
    latin_hypercube: Optional[int] = None,
    ranges: Optional[Mapping[str, Tuple[float, float]]] = None,
):
    """Samples of simulator ``name`` — the bytes ``simemu --seed SEED simulate`` writes.

    ``params`` fixes parameter values (others take their defaults); ``count``
    samples are drawn at each parameter point. With ``grid`` (``{name: (lo, hi,
    n)}``, the product of the axes) or ``latin_hypercube=N`` points over
    ``ranges`` (``{name: (lo, hi)}``) the result is ``(samples, table)``, the
    table a dict of each parameter's values per sample.

    Samples are one array (N, ...) for a single-field simulator, else a dict of
    arrays by field name.
    """
    design = {
        "fixed": [[k, float(v)] for k, v in (params or {}).items()],
        "grid": [
            {"name": k, "lo": float(lo), "hi": float(hi), "n": int(n)}
            for k, (lo, hi, n) in (grid or {}).items()
        ],
        "latin_hypercube": None,
        "count": int(count),
    }
    if latin_hypercube is not None:
        design["latin_hypercube"] = {
            "points": int(latin_hypercube),
            "ranges": [
                {"name": k, "lo": float(lo), "hi": float(hi)} for k, (lo, hi) in (ranges or {}).items()
            ],
        }
    elif ranges:
        raise InvalidInputError("ranges need latin_hypercube=N")
    (fields, values), names, _seeds = _call(
        _simemu.simulate, name, json.dumps(dict(options or {})), json.dumps(design), int(seed)
    )
    samples = _stack_result(fields)
    if not grid and latin_hypercube is None:
        return samples
    table = np.asarray(values, dtype=np.float64).reshape(-1, len(names)) if names else np.zeros((0, 0))
    return samples, {n: table[:, i].copy() for i, n in enumerate(names)}


#: Options that describe the data rather than a statistic: every statistic
#: accepts them (those that need them use them), as on the command line.
_DATASET_FACTS = ("angle_deg",)


def _split_facts(options: Mapping[str, Any]) -> Tuple[dict, dict]:
    """The dataset facts among ``options`` (the extension checks them), and the rest."""
    options = dict(options)
    facts = {k: _json_value(float(options.pop(k))) for k in _DATASET_FACTS if k in options and options[k] is not None}
    return facts, options


def _json_value(v: Any) -> Any:
    """``v`` as JSON holds it: arrays as lists, numpy scalars as numbers, NaN and
    infinities as null (JSON has none; the checks downstream name them)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def statistic(name: str, samples: ArrayLike, reference: Optional[ArrayLike] = None, **options):
    """Statistic ``name`` of every sample: ``(x, values)``.

    ``x`` holds the bin centres; ``values`` is (N, bins) for a statistic of one
    component, (components, N, bins) for several (``minkowski``: V0, V1, V2).
    Quantile bins come from ``reference`` (default: the samples themselves), as
    ``simemu stat --reference``. ``options`` are the statistic's (``simemu list
    statistics``), plus ``angle_deg``, a fact about the data any statistic
    accepts. float32 and float64 C-contiguous arrays are read in place.
    """
    stack, _ = _samples(samples, "samples")
    facts, options = _split_facts(options)
    ref = None if reference is None else _samples(reference, "reference")[0]
    x, _x_name, components, values = _call(
        _simemu.statistic,
        name,
        json.dumps({k: _json_value(v) for k, v in options.items()}),
        json.dumps(facts),
        stack,
        ref,
    )
    x = np.asarray(x)
    return (x, values[0]) if len(components) == 1 else (x, values)


def _map_statistic(name: str, maps: ArrayLike, options: dict):
    stack, single = _samples(maps, "maps", sample_ndim=2)
    x, values = statistic(name, stack, **{k: v for k, v in options.items() if v is not None})
    return x, (values[..., 0, :] if single else values)


def power_spectrum(maps: ArrayLike, angle_deg: float, ell_edges: Optional[ArrayLike] = None):
    """``(ell, power)`` of one N×N map or a stack (M, N, N), as lenstools'
    ``ConvergenceMap.powerSpectrum(l_edges)``: bin centres and the binned power
    (one row per map)."""
    return _map_statistic("power-spectrum", maps, {"angle_deg": angle_deg, "ell_edges": ell_edges})


def minkowski(maps: ArrayLike, thresholds: Optional[ArrayLike] = None, sigma_units: bool = False):
    """``(v, V0, V1, V2)`` of one map or a stack, as lenstools'
    ``minkowskiFunctionals(thresholds, norm=sigma_units)``."""
    v, values = _map_statistic("minkowski", maps, {"thresholds": thresholds, "sigma_units": sigma_units})
    return (v, values[0], values[1], values[2])


def peaks(maps: ArrayLike, thresholds: Optional[ArrayLike] = None, sigma_units: bool = False):
    """``(v, counts)``: peak counts per height bin, as lenstools' ``peakCount``."""
    return _map_statistic("peaks", maps, {"thresholds": thresholds, "sigma_units": sigma_units})


def pixel_pdf(maps: ArrayLike, thresholds: Optional[ArrayLike] = None, sigma_units: bool = False):
    """``(v, pdf)``: the one-point distribution per bin, as lenstools' ``pdf``."""
    return _map_statistic("pixel-pdf", maps, {"thresholds": thresholds, "sigma_units": sigma_units})


def _stat_requests(stats: Optional[Sequence[str]], options: Mapping[str, Any]) -> str:
    """Each statistic with the options it declares, by the command line's rule (JSON)."""
    names = list(stats) if stats else ["pixel-pdf", "power-spectrum", "minkowski", "peaks"]
    given = {k: _json_value(v) for k, v in options.items()}
    return _call(_simemu.statistic_requests, names, json.dumps(given))


@dataclass
class Validation:
    """What :func:`validate` found: the report the CLI writes, as Python objects."""

    report_dict: dict
    _inputs: tuple

    @property
    def passed(self) -> bool:
        """Whether every statistic (each component alone) passes."""
        return all(s["verdict"] == "pass" for s in self.report_dict["summary"])

    @property
    def verdicts(self) -> Dict[str, str]:
        return {s["statistic"]: s["verdict"] for s in self.report_dict["summary"]}

    @property
    def tests(self) -> Dict[str, dict]:
        """Each test asked for by name: ``value``, ``floor`` (the same test between
        the reference's halves), ``flagged``, and for the classifier tests
        ``auc``, ``accuracy``, ``jsd`` and ``p_value``."""
        out = {}
        for t in self.report_dict.get("vector_tests", []):
            entry = {"value": t["value"], "floor": t["floor"], "flagged": t["flagged"]}
            scores = t.get("classifier")
            if scores:
                entry.update({k: scores["candidate"][k] for k in ("auc", "accuracy", "jsd", "p_value")})
            out[t["test"]] = entry
        return out

    def to_dict(self) -> dict:
        """The report, as ``report.json`` holds it."""
        return self.report_dict

    def table(self) -> List[dict]:
        """One row per statistic, component and bin: means, scatter, KS D and p."""
        rows = []
        for s in self.report_dict["statistics"]:
            for c in s["components"]:
                for i, x in enumerate(c["x"]):
                    rows.append(
                        {
                            "statistic": s["statistic"],
                            "component": c["name"],
                            "x": x,
                            "ref_mean": c["ref_mean"][i],
                            "ref_std": c["ref_std"][i],
                            "cand_mean": c["cand_mean"][i],
                            "cand_std": c["cand_std"][i],
                            "rel_diff": c["rel_diff"][i],
                            "ks_d": c["ks_d"][i],
                            "ks_p": c["ks_p"][i],
                            "passes": c["ks_p"][i] > self.report_dict["criteria"]["bin_passes_when_p_above"],
                        }
                    )
        return rows

    def to_pandas(self):
        """:meth:`table` as a pandas DataFrame (pandas is optional)."""
        import pandas

        return pandas.DataFrame(self.table())

    def summary(self) -> str:
        """Per statistic: pass % of bins and verdict, as ``simemu validate`` prints."""
        lines = [f"{'statistic':<16} {'bins':>6} {'pass':>7} verdict"]
        for s in self.report_dict["summary"]:
            lines.append(f"{s['statistic']:<16} {s['bins']:>6} {100 * s['pass_fraction']:>6.1f}% {s['verdict']}")
            for c in s.get("components", []) if len(s.get("components", [])) > 1 else []:
                lines.append(f"  {c['name']:<14} {c['bins']:>6} {100 * c['pass_fraction']:>6.1f}% {c['verdict']}")
        for name, t in self.tests.items():
            lines.append(f"{name:<16} {t['value']:.4g} (floor {t['floor']:.4g}) {'FLAGGED' if t['flagged'] else 'ok'}")
        return "\n".join(lines)

    def report(self, directory: PathLike, force: bool = False) -> str:
        """Writes the report directory (``report.md``, ``report.json``, plots), as
        ``simemu validate --out``; returns the path of ``report.md``."""
        reference, candidate, requests, field, tests, _keep = self._inputs
        _call(_simemu.validate, reference, candidate, requests, field, os.fspath(directory), force, tests)
        return os.path.join(os.fspath(directory), "report.md")


def _dataset_path(values: Any, what: str, attrs: dict, scratch: List[tempfile.TemporaryDirectory]) -> str:
    """A dataset for ``values``: its path, or arrays written to scratch space."""
    if isinstance(values, (str, os.PathLike)):
        return os.fspath(values)
    stack, _ = _samples(values, what)
    directory = tempfile.TemporaryDirectory(prefix="simemu-")
    scratch.append(directory)
    path = os.path.join(directory.name, what)
    write_dataset(path, {"field": stack}, attrs=attrs)
    return path


def validate(
    reference: Union[ArrayLike, PathLike],
    candidate: Union[ArrayLike, PathLike],
    stats: Optional[Sequence[str]] = None,
    field: Optional[str] = None,
    **options,
) -> Validation:
    """Compares ``candidate`` with ``reference`` statistic by statistic, as ``simemu validate``.

    Each is a sample array (N, ...) or a dataset directory. ``stats`` defaults
    to the harness's four map statistics; ``options`` go to the statistics that
    declare them (``angle_deg`` is a fact about the data: arrays carry it as the
    field's attribute). Per bin a two-sample KS test; a statistic passes when
    ≥ 80% of its bins (of each component) pass. Test names among ``stats``
    (``fpd``, ``kpd``, ``covariance``, ``c2st``, ``c2st-stats``) add those
    tests on whole samples and statistic vectors (:attr:`Validation.tests`).
    """
    known_tests = set(_simemu.test_names())
    tests = [s for s in stats or [] if s in known_tests]
    statistics = [s for s in stats or [] if s not in known_tests]
    if tests and not statistics:
        raise ValueError(
            f"stats names only tests ({', '.join(tests)}); name the statistics whose vectors they test"
        )
    requests = _stat_requests(statistics, options)
    facts, _ = _split_facts(options)
    scratch: List[tempfile.TemporaryDirectory] = []
    ref = _dataset_path(reference, "reference", facts, scratch)
    cand = _dataset_path(candidate, "candidate", facts, scratch)
    report = json.loads(_call(_simemu.validate, ref, cand, requests, field, None, False, tests))
    return Validation(report, (ref, cand, requests, field, tests, scratch))


class Dataset:
    """A simemu dataset directory, read lazily: ``len(ds)``, ``ds.array()``,
    ``ds.params``, ``ds.fields``."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        info = json.loads(_call(_simemu.dataset_info, self.path))
        self.fields: List[dict] = info["fields"]
        self.param_names: List[str] = info["param_names"]
        self.source: dict = info["source"]
        self._len: int = info["len"]

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        shapes = ", ".join(f"{f['name']} {tuple(f['shape'])} {f['dtype']}" for f in self.fields)
        return f"Dataset({self.path!r}: {self._len} samples of {shapes})"

    def _field_index(self, field: Union[None, int, str]) -> int:
        if field is None:
            if len(self.fields) != 1:
                names = [f["name"] for f in self.fields]
                raise InvalidInputError(f"the dataset has several fields: name one of {names}")
            return 0
        if isinstance(field, int):
            return field
        for i, f in enumerate(self.fields):
            if f["name"] == field:
                return i
        raise InvalidInputError(f"no field '{field}' (fields: {[f['name'] for f in self.fields]})")

    def array(self, field: Union[None, int, str] = None, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Samples ``start:stop`` of a field as an array (N, ...), in their stored dtype."""
        stop = self._len if stop is None else stop
        if not 0 <= start <= stop <= self._len:
            raise InvalidInputError(f"samples {start}:{stop} of a dataset of {self._len}")
        return _call(_simemu.dataset_read, self.path, self._field_index(field), start, stop - start)

    def __array__(self, dtype=None, copy=None):
        array = self.array()
        return array if dtype is None else array.astype(dtype)

    @property
    def params(self) -> np.ndarray:
        """The parameters of every sample (N, P), columns as :attr:`param_names`."""
        values, _ = _call(_simemu.dataset_params, self.path)
        return np.asarray(values, dtype=np.float64).reshape(self._len, len(self.param_names))

    @property
    def seeds(self) -> Optional[np.ndarray]:
        """Each sample's seed (None when the dataset has none)."""
        _, seeds = _call(_simemu.dataset_params, self.path)
        return None if seeds is None else np.asarray(seeds, dtype=np.uint64)


def open_dataset(path: PathLike) -> Dataset:
    """Opens a dataset directory (``manifest.json`` and its ``.npy`` shards)."""
    return Dataset(path)


def write_dataset(
    path: PathLike,
    samples: Union[ArrayLike, Mapping[str, ArrayLike]],
    params: Optional[Mapping[str, ArrayLike]] = None,
    attrs: Optional[Mapping[str, Any]] = None,
    force: bool = False,
) -> Dataset:
    """Writes arrays (N, ...) as a dataset: one array, or a dict of fields by
    name; ``params`` a dict of each parameter's N values; ``attrs`` the fields'
    attributes (such as ``angle_deg``). Atomic; an existing dataset is replaced
    only with ``force``."""
    fields = samples if isinstance(samples, Mapping) else {"field": samples}
    entries = []
    for name, values in fields.items():
        stack, _ = _samples(values, f"field '{name}'")
        entries.append((name, stack, json.dumps({k: _json_value(v) for k, v in (attrs or {}).items()})))
    names = list((params or {}).keys())
    table = (
        np.column_stack([np.asarray(params[n], dtype=np.float64) for n in names]).ravel().tolist() if names else []
    )
    _call(_simemu.write_dataset, os.fspath(path), entries, table, names, force)
    return Dataset(path)


class Generator:
    """A trained generator: :meth:`generate` draws samples as ``simemu generate`` does."""

    def __init__(self, inner):
        self._inner = inner

    @property
    def name(self) -> str:
        """The generator plugin's name."""
        return self._inner.name

    @property
    def param_names(self) -> List[str]:
        """The parameters it is conditioned on (empty: unconditional)."""
        return list(self._inner.param_names)

    def __repr__(self) -> str:
        return f"Generator({self._inner.checkpoint!r}: {self.name}, params {self.param_names})"

    def generate(self, count: int, params: Optional[Mapping[str, float]] = None, seed: int = 0):
        """``count`` samples; sample ``i`` draws from the seed ``simemu --seed SEED
        generate`` gives it, so both give the same bytes."""
        fields, _ = _call(
            self._inner.generate, int(count), [(k, float(v)) for k, v in (params or {}).items()], int(seed)
        )
        return _stack_result(fields)


def load(checkpoint: PathLike, device: str = "cpu") -> Generator:
    """Loads a trained generator: a run directory, a checkpoint inside one, or
    ``"builtin:NAME"`` for a model shipped with simemu, onto ``device``
    (``"cpu"``, ``"cuda"`` or ``"cuda:N"``; CUDA needs a build with the ``cuda``
    feature, docs/gpu.md)."""
    return Generator(_call(_simemu.load, os.fspath(checkpoint), str(device)))
