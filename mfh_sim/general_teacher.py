"""Moved: the Table 2 protocol is :mod:`mfh_sim.protocols.table2`, its entry point and the paper's
rows :mod:`mfh_sim.experiments.paper` (``table2``, ``write_table2``, ``PAPER_ROWS``,
``PAPER_TABLE2``), its result :class:`mfh_sim.results.Table2Result`.  This name re-exports them
for existing imports."""

from mfh_sim.experiments.paper import PAPER_ROWS, PAPER_TABLE2, table2, write_table2  # noqa: F401
from mfh_sim.protocols.table2 import (  # noqa: F401
    ALGORITHM1_DATA,
    MODES,
    SALIENCE_MODES,
    TABLE2,
    RowInputs,
    Table2Metrics,
    Table2Point,
    Table2Protocol,
    Table2Spec,
    fit_teachers,
    make_table2_run,
    restrict_to_selection,
    row_identity,
    row_inputs,
    select_channels,
    selection_mask,
    table2_point,
    table2_venn,
    teacher_init,
)
from mfh_sim.results import Table2Result  # noqa: F401
