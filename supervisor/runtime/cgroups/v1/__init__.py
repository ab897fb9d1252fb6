"""cgroup v1: one hierarchy per controller, so a cgroup is a directory in each of them."""
