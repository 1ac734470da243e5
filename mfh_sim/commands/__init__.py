"""Subcommands of ``mfh-sim``: one module each, discovered by :mod:`mfh_sim.cli`."""
