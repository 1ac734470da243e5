"""Benchmarks and validation harnesses, run by hand from the repository root (``python
benchmarks/NAME.py``); importable as ``benchmarks.NAME`` there, which the tests of the harnesses use.
Not part of the installed package."""
