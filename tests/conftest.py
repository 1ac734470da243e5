import os

# Tests run on the CPU whatever the machine has, so that numbers are comparable everywhere.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
