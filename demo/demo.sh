#!/usr/bin/env bash
# The build-your-own-container checklist, each step with its evidence. Run by `make demo` as root.
# Containers are named demo-*, use the default directories and network, and are all removed.
set -euo pipefail

BG_PIDS=()
# ctrctl run leaves its bridge for the next run, as docker0 stays; the demo removes one it made.
BRIDGE_WAS_THERE=$(ip link show ctr0 >/dev/null 2>&1 && echo yes || echo no)
cleanup() {
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$BRIDGE_WAS_THERE" = no ] && [ -z "$(ip -o link show master ctr0 2>/dev/null)" ]; then
        ip link del ctr0 2>/dev/null || true
    fi
}
trap cleanup EXIT

# The reply of a TCP server, read by the host's bash (retried while the container comes up).
fetch() {
    for _ in $(seq 50); do
        timeout 2 bash -c "cat < /dev/tcp/$1/$2" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no answer from $1:$2" >&2
    return 1
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A shell that starts in the image's root (pivot_root into an overlay of the busybox image)"
show ctrctl run --rm --network none -- /bin/sh -c 'echo "pwd: $(pwd)"; ls /'

step "2. The container's own hostname (new UTS namespace)"
show ctrctl run --rm --network none --hostname demo-box -- /bin/hostname
echo "host's hostname stays: $(hostname)"

step "3. ps shows only the container's processes, the command as PID 1 (new PID namespace + fresh /proc)"
show ctrctl run --rm --network none -- /bin/sh -c 'sleep 10 & ps -o pid,user,args; true'

step "4. A server in container A, a client on the host, over veth with different addresses"
ctrctl run --rm --stop-timeout 1s --name demo-a --address 10.88.200.2/16 -- \
    /bin/sh -c 'printf "#!/bin/sh\necho hello from \$(hostname) at \$(ip -4 -o addr show eth0 | tr -s \" \" | cut -d\" \" -f4)\n" > /srv.sh;
                chmod +x /srv.sh; exec nc -ll -p 7000 -e /srv.sh' &
BG_PIDS+=($!)
printf '$ cat < /dev/tcp/10.88.200.2/7000   (bash on the host)\n'
fetch 10.88.200.2 7000
echo "host side: $(ip -4 -o addr show ctr0 | awk '{print $2, $4}')"

step "5a. A memory hog is OOM-killed at the container's 32M limit..."
HOG='x=$(head -c 100000000 /dev/zero | tr "\0" a); echo "allocated ${#x} bytes"'
set +e
ctrctl run --rm --network none --memory-max 32M -- /bin/sh -c "$HOG"
echo "exit status: $? (137 = killed by SIGKILL from the OOM killer)"
set -e
step "5b. ...while the same program completes without one"
show ctrctl run --rm --network none -- /bin/sh -c "$HOG"

step "5c. A busy loop held to its CPU quota: 20% of one CPU for 2 s of wall time"
show ctrctl run --rm --network none --cpu-quota 20% -- \
    /bin/sh -c "time -p timeout 2 sh -c 'while :; do :; done'; true"
echo "(user+sys about 0.4 s: the quota holds; unlimited it would be about 2 s)"

step "6. Two containers listen on the same port at once; neither sees the other's processes"
for n in b c; do
    ctrctl run --rm --stop-timeout 1s --name "demo-$n" --address "10.88.200.1$([ $n = b ] && echo 1 || echo 2)/16" -- \
        /bin/sh -c "printf '#!/bin/sh\necho I am \$(hostname), my processes:\nps -o pid,args\n' > /srv.sh;
                    chmod +x /srv.sh; exec nc -ll -p 8080 -e /srv.sh" &
    BG_PIDS+=($!)
done
for ip in 10.88.200.11 10.88.200.12; do
    printf '$ cat < /dev/tcp/%s/8080\n' "$ip"
    fetch "$ip" 8080
done

step "7. A published port: the container's server on the host's loopback, IPv4 and IPv6 (ctrctl run -p)"
ctrctl run --rm --stop-timeout 1s --name demo-d -p 18080:8080 -- \
    /bin/sh -c 'printf "#!/bin/sh\necho hello through the published port from \$(hostname)\n" > /srv.sh;
                chmod +x /srv.sh; exec nc -ll -p 8080 -e /srv.sh' &
BG_PIDS+=($!)
for host in 127.0.0.1 ::1; do
    printf '$ cat < /dev/tcp/%s/18080\n' "$host"
    fetch "$host" 18080
done

step "Clean-up"
cleanup
BG_PIDS=()
trap - EXIT
echo "veth left on the host: $(ip -o link show type veth | wc -l)"
echo "bridge ctr0: $(ip link show ctr0 >/dev/null 2>&1 && echo "still there (it was before the demo)" || echo "gone")"
echo "demo complete"
