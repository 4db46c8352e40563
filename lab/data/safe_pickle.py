"""A restricted unpickler for the two pickle-based dataset formats (MNIST pkl, CIFAR batches).

Pickles are only ever unpickled after their checksum matched a known value, and even
then through :class:`RestrictedUnpickler`, which resolves only the few numpy globals
needed to rebuild plain arrays and refuses everything else with a :class:`DataError`.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from lab.core.errors import DataError

try:  # numpy >= 2 moved the module; older pickles name ``numpy.core``
    from numpy._core.multiarray import _reconstruct  # type: ignore[import-not-found,attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[attr-defined,no-redef,unused-ignore]

#: The globals a pickled plain ``numpy.ndarray`` (protocols 0-4) refers to.
NUMPY_ARRAY_GLOBALS: Mapping[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed``; anything else is a DataError."""

    def __init__(
        self,
        file: io.BytesIO,
        *,
        what: str,
        allowed: Mapping[tuple[str, str], Any] = NUMPY_ARRAY_GLOBALS,
        encoding: str = "latin1",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self._what = what
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed object for ``module.name`` or refuse it."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._what} refers to {module}.{name}, which the lab refuses to unpickle; "
                "it is not a plain dataset pickle, so delete it and fetch the original file."
            ) from None


def safe_loads(
    data: bytes,
    *,
    what: str,
    encoding: str = "latin1",
    allowed: Mapping[tuple[str, str], Any] = NUMPY_ARRAY_GLOBALS,
) -> Any:
    """Unpickle ``data`` (already checksum-verified) with :class:`RestrictedUnpickler`.

    ``encoding`` decodes Python 2 ``str`` objects: ``"latin1"`` for the MNIST pickle,
    ``"bytes"`` for CIFAR batches (their dict keys are bytes).
    """
    try:
        return RestrictedUnpickler(
            io.BytesIO(data), what=what, allowed=allowed, encoding=encoding
        ).load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"{what} is not a readable pickle ({type(exc).__name__}: {exc}); "
            "delete it and fetch it again."
        ) from exc
