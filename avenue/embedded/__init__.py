"""The embedded database's wing: what only make run's embedded database needs, chosen by its dialect.

- ``supervisor``: the server as a separate process (it is GPL-2.0: run, never imported) and
  the supervisor that restarts it when it stalls;
- ``relay``: make run's one connection to it;
- ``expiry``: its TTL indexes made plain and expired by the app;
- ``devserver``: make run's processes (the entry point is ``python -m avenue.devserver``).

Why each exists is in docs/production.md, "The embedded database". On mongod and mongomock
none of it runs.
"""

from __future__ import annotations

from avenue.embedded.supervisor import EmbeddedServer, GaveUp, Supervisor, alive, executable, free_port

__all__ = ["EmbeddedServer", "GaveUp", "Supervisor", "alive", "executable", "free_port"]
