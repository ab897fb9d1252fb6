"""OCI runtime bundles: ``config.json`` read into the one container model (``config``), and what
``ctr-runtime`` keeps of a container between its commands (``state``). Standard library and the
model only: ``ctr-runtime state``, ``kill`` and ``delete`` import nothing heavier."""
