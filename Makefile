# ctr: everything a fresh Debian 12 machine needs, run as root.
#   make demo   set up, then show the container checklist with evidence
#   make test   set up, then lint, type-check and run the whole test suite
#   make test-unit  the unit tests alone (no root needed, seconds)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= /var/lib/ctr
STAMPS := .make
APT_PACKAGES := busybox-static e2fsprogs iproute2 procps python3-venv python3-dev gcc libc6-dev \
	libjson-c-dev systemd systemd-container dbus prometheus python3-seccomp docker-registry skopeo umoci podman apache2-utils openssl \
	curl containerd iperf3

.PHONY: setup apt venv shim image demo test test-unit lint bench clean

SHIM := supervisor/runtime/libexec/ctr-shim
INIT := supervisor/runtime/libexec/ctr-init
FRONT := supervisor/runtime/libexec/ctr-runtime
CTRCTL_FRONT := supervisor/runtime/libexec/ctrctl
# What ctrctl's front end is made from: its options' table comes from ctrctl run's parser.
CTRCTL_SOURCES := packaging/ctrctl-options $(addprefix supervisor/cli/,run.py runargs.py \
	remote_run.py flags.py) $(addprefix supervisor/model/,resources.py runoptions.py defaults.py)

setup: apt venv shim image

shim: $(SHIM) $(INIT) $(FRONT) $(CTRCTL_FRONT)
$(SHIM): shim/ctr-shim.c $(STAMPS)/apt
	@mkdir -p $(dir $@)
	gcc -O2 -Wall -Wextra -Werror -o $@ $<
# Static: exec'd inside the container's root, whose image may have no libc (libc6-dev's libc.a).
$(INIT): shim/ctr-init.c $(STAMPS)/apt
	@mkdir -p $(dir $@)
	gcc -static -s -O2 -Wall -Wextra -Werror -o $@ $<
# ctr-runtime's front end: start, state, kill and delete in C, the rest by the venv's ctr-runtime.
$(FRONT): shim/ctr-runtime.c shim/handover.h $(STAMPS)/apt $(STAMPS)/venv
	@mkdir -p $(dir $@)
	gcc -O2 -Wall -Wextra -Werror -DFALLBACK='"$(abspath $(VENV))/bin/ctr-runtime"' -o $@ $< -ljson-c
# ctrctl's front end: a plain `ctrctl run` through ctrd in C, the rest by the venv's ctrctl.
$(CTRCTL_FRONT): shim/ctrctl.c shim/handover.h $(CTRCTL_SOURCES) $(STAMPS)/apt $(STAMPS)/venv
	@mkdir -p $(dir $@)
	$(PY) packaging/ctrctl-options > $(dir $@)ctrctl-options.h
	gcc -O2 -Wall -Wextra -Werror -DFALLBACK='"$(abspath $(VENV))/bin/ctrctl"' -I$(dir $@) \
		-o $@ $< -ljson-c

apt: $(STAMPS)/apt
$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	packaging/apt-install $(APT_PACKAGES)
	@touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

image: $(DATA_DIR)/images/busybox
$(DATA_DIR)/images/busybox: rootfs/build-busybox $(STAMPS)/apt
	DATA_DIR=$(DATA_DIR) rootfs/build-busybox

demo: setup
	CTR_DATA_DIR=$(DATA_DIR) PATH=$(CURDIR)/$(VENV)/bin:$$PATH demo/demo.sh

lint: venv
	$(VENV)/bin/ruff check supervisor tests bench
	$(VENV)/bin/mypy

# tests/unit: no root, no kernel object, seconds; tests/e2e: root, the real kernel and systemd.
test: setup lint
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

BENCH_PACKAGES := crun runc systemd-container sysbench iperf3 lxc qemu-system-x86 wrk strace
bench: setup
	packaging/apt-install $(BENCH_PACKAGES)
	CTR_DATA_DIR=$(DATA_DIR) $(PY) -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(STAMPS) $(VENV) $(dir $(SHIM))

# Put ctrd, ctrctl, ctr-runtime, ctr-shim, ctr-init, the units and the examples onto this host
# (PREFIX=/usr/local); CTR_VENV=DIR installs from an existing environment instead of making one
# with pip.
.PHONY: install
install: shim
	packaging/install.sh
