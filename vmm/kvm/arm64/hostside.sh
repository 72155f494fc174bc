# The host's side of the cases.sh runs marked HOST:KIND, shared by the nested VM (busybox
# sh, no python: tests.sh) and the host's x86 reruns (bash: checks.sh), so both machines'
# guests meet the same peer. $VSOCK_TOOL is the static vmlab-vsock (guest/linux/vsock.c) and
# $VMLAB_CTL the vmlab binary whose control commands (vmlab balloon, balloon_stats, input)
# talk to the run's --socket, each built for the machine it runs on.
#   host_start KIND SOCK               before vmlab starts (a server the guest connects to)
#   host_run KIND SOCK GUEST_OUT HOST_OUT   while vmlab runs: waits for the guest's ready
#                                      line in GUEST_OUT, then drives it; output to HOST_OUT
#   host_end KIND SOCK HOST_OUT        after vmlab exited: a server's log, the server stopped

# wait_line FILE TEXT: up to 60 s for TEXT in FILE.
wait_line() {
    _i=0
    while [ $_i -lt 600 ]; do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        _i=$((_i + 1))
    done
    echo "host side: no '$2' from the guest in 60 s"
    return 1
}

host_start() {
    case $1 in
        vsock-serve)    # an echo server on PATH_5000 for the guest's connect to CID 2 port 5000
            rm -f "$2_5000" "$2.log"
            : >"$2.log"
            "$VSOCK_TOOL" serve "$2_5000" "$2.log" &
            HOST_PID=$!
            _i=0
            while [ ! -S "$2_5000" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done ;;
    esac
}

host_run() {
    case $1 in
        vsock-connect)  # 100000 seeded bytes to the guest's echo server and back
            wait_line "$3" "listening on port 1234" &&
                "$VSOCK_TOOL" host-connect "$2" 1234 100000 7 ;;
        balloon)        # inflate to 4 MiB, the guest's stats, deflate to 2 MiB
            # Not `balloon --wait`: it polls balloon_stats, and each of those asks the guest
            # for stats, so the guest's output and trace would follow the host's timing.
            wait_line "$3" "balloon: features" || return
            "$VMLAB_CTL" balloon 4M "$2"
            wait_line "$3" "balloon: target 1024 pages, actual 1024" || return
            # Each balloon_stats asks the guest for fresh numbers: the first's answer is
            # what the second shows; the guest's line says each went out.
            "$VMLAB_CTL" balloon_stats "$2" >/dev/null
            wait_line "$3" "balloon: stats sent (2)" || return
            "$VMLAB_CTL" balloon_stats "$2" --json
            wait_line "$3" "balloon: stats sent (3)" || return
            # No --wait: the guest exits once it got there (rounds=2), closing the socket.
            "$VMLAB_CTL" balloon 2M "$2" ;;
        input-tap)
            wait_line "$3" "input: ready" && "$VMLAB_CTL" input "$2" tap 640 360 ;;
        input-keys)
            wait_line "$3" "input: ready" && "$VMLAB_CTL" input "$2" text A &&
                "$VMLAB_CTL" input "$2" key 28 ;;
    esac >"$4" 2>&1
}

host_end() {
    case $1 in
        vsock-serve)    # the connection's child logs once the guest's shutdown reached it
            _i=0
            while [ ! -s "$2.log" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
            kill "$HOST_PID" 2>/dev/null
            wait "$HOST_PID" 2>/dev/null
            cat "$2.log" >>"$3"
            rm -f "$2_5000" "$2.log" ;;
    esac
}
