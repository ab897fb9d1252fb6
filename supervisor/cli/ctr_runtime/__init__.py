"""``ctr-runtime``: runc's command line over ctr's runtime core, for the engines that drive an OCI
runtime (podman's conmon, containerd's shim, CRI-O). ``main`` parses it and imports only what a
command needs: ``state``, ``kill`` and ``delete`` run without the network or HTTP stacks."""
