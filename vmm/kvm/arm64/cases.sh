# The runs of `make test-kvm-arm64`, shared by the inner VM (tests.sh, busybox sh: runs
# them on arm64 KVM) and the host (scripts/test-kvm-arm64.sh, bash: runs the guest
# programs again on the x86 software CPU and compares). Each line:
#   c NAME PROGRAM "GUEST ARGS" VMLAB-OPTIONS...
# PROGRAM is a guest program's name, or - for a --kernel run; @DISK@ is a fresh copy of a
# 4 MiB zero disk, @W@ the tree the inner VM sees (/w).
cases() {
    c hello hello ""
    c hello-fmt hello "fmt"
    c hello-fdt hello "fdt"
    c memtest memtest "size=512"
    c blk blk "" --block @DISK@,id=vmlab-disk0
    c blk-irq blk "ops=read,write,err mode=irq" --block @DISK@
    c blk-packed blk "ops=read,write,err ring=packed indirect=1 event_idx=1" --block @DISK@
    c rng rng "n=64" --rng --seed 7
    c console console "" --console "out=/dev/null,in=hello from host\\n"
    # Bad input: exit 2, one clear line, nothing ran.
    c bad-cpu-sim hello "" --cpu sim
    c bad-x86-elf @W@/x86/hello.elf ""
    c bad-magic - "" --kernel @W@/bad/magic.img
    c bad-truncated - "" --kernel @W@/bad/truncated.img
    c bad-image-size - "" --mem 64M --kernel @W@/bad/image-size.img
    c bad-initrd - "" --mem 64M --kernel @W@/bad/small.img --initrd @W@/bad/big.initrd
}
