"""cgroup v2: one unified hierarchy, every controller's files in the cgroup's single directory."""
