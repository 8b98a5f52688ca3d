"""What the tests (and the benchmarks) share besides fixtures: one process launcher
(``launcher``), one API client with ``upload()`` and the one multipart encoder (``client``),
one token maker (``tokens``), and the script that makes the test files (``fixtures``).

``bench/`` imports this package; nothing here (and nothing under ``tests/``) imports ``bench/``.
"""
