"""The package's version (the single source: ``pyproject.toml`` reads it) and its provenance.

Importing this module costs nothing: :func:`versions` imports the numerical libraries only when
it is called.
"""

from __future__ import annotations

import platform

#: mfh-sim's version; ``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``).
__version__ = "0.5.2"


def versions() -> dict[str, str]:
    """Provenance of a result: the versions of mfh-sim, Python and the packages the numbers depend
    on (numpy, jax, jaxlib, flax, optax), and JAX's backend and first device.

    Stored beside every result so that a number can be traced to the software that computed it.
    Importing JAX here initialises its backend (a second or so, once per process); flax and optax
    are read from their installed metadata, not imported (a linear run never imports flax).
    """
    from importlib import metadata

    import jax
    import jaxlib
    import numpy as np

    return {
        "mfh_sim": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": metadata.version("flax"),
        "optax": metadata.version("optax"),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
    }


__all__ = ["__version__", "versions"]
