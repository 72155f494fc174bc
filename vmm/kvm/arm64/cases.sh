# The runs of `make test-kvm-arm64`, shared by the inner VM (tests.sh, busybox sh: runs
# them on arm64 KVM) and the host (scripts/test-kvm-arm64.sh, bash: runs the guest
# programs again on the x86 software CPU and compares). Each line:
#   c NAME PROGRAM "GUEST ARGS" VMLAB-OPTIONS...
# PROGRAM is a guest program's name, or - for a --kernel run; @DISK@ is a fresh copy of a
# 4 MiB zero disk, @W@ the tree the inner VM sees (/w); ENV:K=V sets K for the arm64 run;
# HOST:KIND gives the run a host side (hostside.sh) on both machines, @SOCK@ its socket.
cases() {
    c hello hello ""
    c hello-fmt hello "fmt"
    c hello-fdt hello "fdt"
    c memtest memtest "size=512"
    c blk blk "" --block @DISK@,id=vmlab-disk0
    c blk-irq blk "ops=read,write,err mode=irq" --block @DISK@
    c blk-packed blk "ops=read,write,err ring=packed indirect=1 event_idx=1" --block @DISK@
    # Device interrupts go through resampling irqfds by default; KVM_IRQ_LINE stays tested.
    c blk-irq-line blk "ops=read,write,err mode=irq" ENV:VMLAB_KVM_IRQFD=0 --block @DISK@
    c rng rng "n=64" --rng --seed 7
    c console console "" --console "out=/dev/null,in=hello from host\\n"
    # The CPU timer (the virtual timer, PPI 27) and a device interrupt (the 16550's SPI 4),
    # through the runtime's arch-neutral calls; idle sleeps between timer ticks.
    c timer timer "ticks=10"
    c uartirq uartirq ""
    c idle idle "ticks=40" --block @DISK@
    c idle-irq idle "ticks=40 mode=irq" --block @DISK@
    # Synchronous exceptions to the program's handlers by ESR class, and the runtime's report.
    c exception exception "rounds=3"
    c exception-late exception "late"
    c exception-unhandled exception "unhandled"
    c exception-pagefault exception "pagefault"
    c exception-assert exception "assert"
    # Misbehaving guests: a fault (4), hung in WFI (6: masked, and unmasked with nothing
    # armed), junk written to every virtio window.
    c fault-unmapped fault "mode=unmapped"
    c fault-hlt fault "mode=hlt"
    c fault-idle fault "mode=idle"
    c fault-garbage fault "mode=garbage"
    # virtio-vsock both ways, the host's side the static vmlab-vsock (no python in there):
    # the host connects to the guest's echo server, the guest to the host's on PATH_5000.
    # @SOCK@ is a socket path of the run's own; HOST:KIND runs hostside.sh's KIND with it.
    c vsock-echo vsock_echo "conns=1" HOST:vsock-connect --vsock cid=3,uds=@SOCK@
    c vsock-client vsock_client "n=5" HOST:vsock-serve --vsock cid=3,uds=@SOCK@
    # virtio-balloon and virtio-input driven by the vmlab binary's control commands.
    c balloon balloon "mem_mb=8 rounds=2" HOST:balloon --balloon --socket @SOCK@
    c input-tap input "" HOST:input-tap --input multi-touch,width=720,height=1280 --socket @SOCK@
    c input-keys input "n=8" HOST:input-keys --input keyboard --socket @SOCK@
    # virtio-net on the loop backend (every frame sent comes back; --net user is not in the
    # arm64 build): more frames out than receive buffers posted, then one more.
    c net-loop net "flood=64" --net loop
    c net-loop-irq net "flood=64 mode=irq ring=packed" --net loop
    # One polled virtio-blk GET_ID round trip is one MMIO exit (QueueNotify) and the
    # device's work: the figure of an exit's cost (its times are not compared).
    c latency latency "op=getid n=2000" --block @DISK@
    # An Image that powers off at once: PSCI SYSTEM_OFF is exit status 0.
    c psci-off - "" --kernel @W@/images/psci-off.img
    # Bad input: exit 2, one clear line, nothing ran.
    c bad-cpu-sim hello "" --cpu sim
    c bad-x86-elf @W@/x86/hello.elf ""
    c bad-el2 @W@/images/el2.elf ""
    c bad-magic - "" --kernel @W@/images/magic.img
    c bad-truncated - "" --kernel @W@/images/truncated.img
    c bad-image-size - "" --mem 64M --kernel @W@/images/image-size.img
    c bad-initrd - "" --mem 64M --kernel @W@/images/small.img --initrd @W@/images/big.initrd
}
