"""The development kit: what tests, benchmarks and the demo need and the bridge never does.

- :mod:`bridge_dev.samples` — made-up records and clinic-side resources (Tasks, topics)
- :mod:`bridge_dev.sandbox` — start and stop the sandbox EHR (``sekmet-fhir``) on a free port
- :mod:`bridge_dev.stores` — throwaway stores (a PostgreSQL schema per run)
- :mod:`bridge_dev.demo` — ``bridge demo``: the whole story against the sandbox EHR

A distribution of its own (``dev/pyproject.toml``, installed by ``make install``), so the
runtime package ships without it; ``tests/test_architecture.py`` checks that ``bridge`` never
imports it (``bridge demo`` loads it when the command runs, from the repository).
"""
