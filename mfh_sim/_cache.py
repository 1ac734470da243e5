"""JAX's persistent compilation cache in a per-user directory, so a fresh process starts quickly.

Compiling the engine's programs takes most of a fresh process's first :func:`mfh_sim.simulate`
on CPU; JAX can store the compiled executables on disk and load them in a later process instead
of compiling again.  A loaded executable is the one the compiler produced, so no number changes.

Where (first that applies):

* ``MFH_SIM_NO_CACHE=1`` (or ``true``/``yes``/``on``): mfh-sim sets nothing up;
* the user already chose a JAX cache (``JAX_COMPILATION_CACHE_DIR`` in the environment, or
  ``jax.config.jax_compilation_cache_dir`` set before ``import mfh_sim``): it is respected;
* ``MFH_SIM_CACHE_DIR``;
* ``$XDG_CACHE_HOME/mfh-sim/jax``, else ``~/.cache/mfh-sim/jax``.

A directory that cannot be created or written leaves the cache off (logged on the ``mfh_sim``
logger at INFO, never raised): start-up is then slower, never broken.  The directory grows with
each new program shape (a few hundred KB each) and is never evicted by JAX (eviction needs the
``filelock`` package); delete it at any time to reclaim the space.

Why environment variables rather than ``jax.config.update``: ``jax`` reads ``JAX_*`` variables
when it is first imported, so :func:`enable_compilation_cache` can run at ``import mfh_sim``
without importing jax itself (``mfh-sim --help`` should not pay for jax).  If jax is already
imported, the same settings go through ``jax.config.update`` instead.  Either way the call is
cheap and idempotent, so the engine may call it again right before it compiles.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("mfh_sim")

#: Environment variables mfh-sim reads.
CACHE_DIR_ENV = "MFH_SIM_CACHE_DIR"
NO_CACHE_ENV = "MFH_SIM_NO_CACHE"

# Marks the JAX variables as ours, so a child process with MFH_SIM_NO_CACHE=1 can tell the
# inherited JAX_COMPILATION_CACHE_DIR we set (and remove it) from one the user set (and keep it).
_MARKER_ENV = "_MFH_SIM_JAX_CACHE_DIR"

# Our CPU programs compile in well under JAX's default 1 s threshold and would never be
# written; every compiled program is worth keeping.  Entry size 0 is JAX's default
# ("no minimum"), set explicitly so an override elsewhere cannot exclude our small entries.
_SETTINGS: dict[str, str] = {
    "jax_persistent_cache_min_compile_time_secs": "0",
    "jax_persistent_cache_min_entry_size_bytes": "0",
}

_TRUE = {"1", "true", "yes", "on"}

#: The directory in use after :func:`enable_compilation_cache` (None: mfh-sim set no cache).
active_dir: str | None = None


def cache_disabled() -> bool:
    """True when ``MFH_SIM_NO_CACHE`` asks for no persistent compilation cache."""
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() in _TRUE


def default_cache_dir() -> Path:
    """``MFH_SIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/mfh-sim/jax``, else ``~/.cache/mfh-sim/jax``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mfh-sim" / "jax"


def _writable_dir(path: Path) -> bool:
    """Create ``path`` if needed and prove it writable by writing a file (``os.access`` can lie
    on read-only mounts and for root)."""
    # A unique name per process (no tempfile import: this runs at ``import mfh_sim``).
    probe = path / f".probe-{os.getpid()}-{id(path)}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink(missing_ok=True)
        return True
    except OSError as error:
        logger.info("mfh-sim: persistent compilation cache off, %s is not writable (%s)", path, error)
        return False


def _setting(name: str) -> str:
    """Our value for a JAX threshold, unless the user's environment sets one (theirs wins)."""
    return os.environ.get(name.upper(), _SETTINGS[name])


def _jax_imported() -> bool:
    return "jax" in sys.modules


def _clear_inherited() -> None:
    """Undo what an mfh-sim parent process put in the environment (not what a user set), and
    in jax's config if jax already read it from there."""
    ours = os.environ.pop(_MARKER_ENV, None)
    if ours is None:
        return
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") == ours:
        del os.environ["JAX_COMPILATION_CACHE_DIR"]
        for name in _SETTINGS:
            os.environ.pop(name.upper(), None)
    if _jax_imported():
        import jax

        if jax.config.jax_compilation_cache_dir == ours:
            jax.config.update("jax_compilation_cache_dir", None)


def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache in mfh-sim's per-user directory.

    Returns the directory in use, or None when mfh-sim leaves the cache off (disabled by
    ``MFH_SIM_NO_CACHE``, a cache the user chose themselves, or an unwritable directory).  Never
    raises.  Does not import jax.
    """
    global active_dir
    try:
        if cache_disabled():
            if active_dir is None:
                _clear_inherited()
            # Had this process already enabled it, the flag was set too late to matter for
            # programs compiled since; leave jax's state alone rather than half-undo it.
            return None
        if active_dir is not None:
            return active_dir
        inherited = os.environ.get(_MARKER_ENV)
        user_env = os.environ.get("JAX_COMPILATION_CACHE_DIR")
        if user_env and user_env != inherited:
            logger.info("mfh-sim: using the JAX cache the user set, %s", user_env)
            return None
        if _jax_imported():
            import jax

            if jax.config.jax_compilation_cache_dir and jax.config.jax_compilation_cache_dir != inherited:
                logger.info("mfh-sim: using the JAX cache the user set, %s",
                            jax.config.jax_compilation_cache_dir)
                return None
        path = default_cache_dir()
        if not _writable_dir(path):
            _clear_inherited()  # a parent's directory, unusable here: do not let jax try it
            return None
        directory = str(path.resolve())
        if _jax_imported():
            import jax

            jax.config.update("jax_compilation_cache_dir", directory)
            jax.config.update("jax_persistent_cache_min_compile_time_secs",
                              float(_setting("jax_persistent_cache_min_compile_time_secs")))
            jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                              int(_setting("jax_persistent_cache_min_entry_size_bytes")))
        # Also in the environment: read by jax if it is imported later in this process, and
        # inherited by child processes (workers, the CLI's subprocesses) so they share the cache.
        os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
        for name, value in _SETTINGS.items():
            os.environ.setdefault(name.upper(), value)
        os.environ[_MARKER_ENV] = directory
        active_dir = directory
        logger.debug("mfh-sim: persistent compilation cache at %s", directory)
        return directory
    except Exception as error:  # a start-up convenience must never break the import
        logger.info("mfh-sim: persistent compilation cache off (%s: %s)", type(error).__name__, error)
        return None
