"""ctr: a container supervisor for Linux built from kernel primitives."""
