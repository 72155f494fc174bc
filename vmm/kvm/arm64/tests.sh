# The arm64 side of `make test-kvm-arm64` (busybox sh, inside the nested VM): every run of
# cases.sh on arm64 KVM with the static arm64 vmlab; each leaves NAME.out/.err/.rc/.ms, a
# trace (NAME.trace) and its disk (NAME.img) in /tmp/r, then the lot goes to the console as
# a base64 tar.gz for the host to check (scripts/test-kvm-arm64.sh). The Linux boot
# (linux.sh) runs last.
W=/w
R=/tmp/r
mkdir -p $R
dd if=/dev/zero of=/tmp/base.img bs=1024 count=4096 2>/dev/null

# Milliseconds since boot, from /proc/uptime (10 ms steps; busybox date has no %N).
ms() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 )); }

# vmlab_quick on the kernel command line (the GICv2 boot): the runs that take interrupts
# through the guest runtime's GICv2 path (device SPIs, the timer's PPI, exceptions), the two
# hung guests (the VMM's hung check reads the v2 distributor) and Linux.
QUICK=$(grep -o vmlab_quick /proc/cmdline)
QUICK_CASES="hello blk blk-irq timer uartirq idle-irq exception exception-unhandled fault-hlt fault-idle vsock-echo"

# The host sides of the HOST:KIND runs: the arm64 vmlab's control commands and vmlab-vsock.
. $W/hostside.sh
VSOCK_TOOL=$W/vmlab-vsock
VMLAB_CTL=$W/vmlab
mkdir -p /tmp/s

c() {
    name=$1 prog=$2 args=$3
    shift 3
    if [ -n "$QUICK" ]; then
        case " $QUICK_CASES " in *" $name "*) ;; *) return ;; esac
    fi
    set -- "$@"
    i=0
    envs=
    host=
    for o in "$@"; do
        case $o in
            ENV:*) envs="$envs ${o#ENV:}"; continue ;;
            HOST:*) host=${o#HOST:}; continue ;;
            *@DISK@*) cp /tmp/base.img $R/$name.img; o=$(echo "$o" | sed "s|@DISK@|$R/$name.img|") ;;
            *@SOCK@*) o=$(echo "$o" | sed "s|@SOCK@|/tmp/s/$name.sock|") ;;
        esac
        o=$(echo "$o" | sed "s|@W@|$W|g")
        i=$((i + 1))
        eval "a$i=\$o"
    done
    set --
    j=1
    while [ $j -le $i ]; do eval "set -- \"\$@\" \"\$a$j\""; j=$((j + 1)); done
    case $prog in
        -) set -- "$@" ;;
        @W@*) set -- "$@" "$(echo "$prog" | sed "s|@W@|$W|")" -- $args ;;
        *) set -- "$@" "$W/guest/$prog.elf" -- $args ;;
    esac
    t0=$(ms)
    if [ -n "$host" ]; then
        sock=/tmp/s/$name.sock
        host_start $host $sock
        env $envs timeout 120 $W/vmlab run --trace $R/$name.trace "$@" >$R/$name.out 2>$R/$name.err &
        pid=$!
        host_run $host $sock $R/$name.out $R/$name.host
        wait $pid
        echo $? >$R/$name.rc
        host_end $host $sock $R/$name.host
    else
        env $envs timeout 120 $W/vmlab run --trace $R/$name.trace "$@" >$R/$name.out 2>$R/$name.err
        echo $? >$R/$name.rc
    fi
    echo $(( $(ms) - t0 )) >$R/$name.ms
    echo "VMLAB-ARM64: ran $name: status $(cat $R/$name.rc), $(cat $R/$name.ms) ms"
}

. $W/cases.sh
cases
[ -f $W/linux.sh ] && . $W/linux.sh
echo "VMLAB-ARM64-RESULTS-BEGIN"
tar -C $R -c . | gzip -1 | base64
echo "VMLAB-ARM64-RESULTS-END"
