"""The extension module under :mod:`simemu`; use the package's functions instead."""

from typing import List, Optional, Sequence, Tuple

import numpy as np

class RawError(Exception):
    """(kind, message): the package turns it into :class:`simemu.Error` and its subclasses."""

Stacked = Tuple[List[Tuple[str, np.ndarray, str]], List[float]]

def version() -> str: ...
def plugins_json() -> str: ...
def load_plugin(path: str) -> None: ...
def set_threads(threads: int) -> None: ...
def simulate(name: str, options_json: str, design_json: str, seed: int) -> Tuple[Stacked, List[str], List[int]]: ...
def statistic(
    name: str,
    options_json: str,
    attrs_json: str,
    samples: np.ndarray,
    reference: Optional[np.ndarray] = None,
) -> Tuple[List[float], str, List[str], np.ndarray]: ...
def last_statistic_read_in_place() -> bool: ...
def dataset_info(path: str) -> str: ...
def dataset_read(path: str, field: int, start: int, count: int) -> np.ndarray: ...
def dataset_params(path: str) -> Tuple[List[float], Optional[List[int]]]: ...
def write_dataset(
    path: str,
    fields: Sequence[Tuple[str, np.ndarray, str]],
    params: Sequence[float],
    param_names: Sequence[str],
    force: bool = False,
) -> None: ...
def validate(
    reference: str,
    candidate: str,
    statistics_json: str,
    field: Optional[str] = None,
    out: Optional[str] = None,
    force: bool = False,
) -> str: ...

class Generator:
    name: str
    checkpoint: str
    @property
    def param_names(self) -> List[str]: ...
    def generate(self, count: int, params: Sequence[Tuple[str, float]], seed: int = 0, batch: int = 64) -> Stacked: ...

def load(checkpoint: str) -> Generator: ...
