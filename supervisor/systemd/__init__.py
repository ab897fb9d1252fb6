"""ctr's side of systemd, used by the runtime (scopes) and the daemon (services, machined, the
journal, sd_notify) alike: the D-Bus client of the manager, the notify and listen-fds protocols,
native journal entries, machined registration, and the names of ctr's units."""
