"""The model: the frozen spec of a container and one parser per value, standard library only.

Every way a container is described — a TOML definition, an API body, ``ctrctl`` flags, an OCI
``config.json``, an image's config — becomes a :class:`~supervisor.model.spec.ContainerSpec`
through the parsers here, so a value is checked once, with the same words whichever way it came.
A parser takes the raw value (a TOML or JSON scalar, a command-line string) and returns the typed
one or raises :class:`~supervisor.model.errors.Invalid` saying what a good value looks like.
"""
