"""Benchmarks of ctr against crun, runc, systemd-nspawn and unshare(1): ``make bench``."""
