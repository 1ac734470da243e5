"""``python -m mfh_sim``: the ``mfh-sim`` command line (:mod:`mfh_sim.cli`)."""

import sys

from mfh_sim.cli import main

sys.exit(main())
