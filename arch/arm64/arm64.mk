# `make ARCH=arm64`: the static arm64 vmlab (build/arm64/vmlab) and the arm64 guest programs
# (build/arm64/guest/*.elf), cross-built with Debian's gcc-aarch64-linux-gnu.
# Left out of this build, with a clear error when asked for:
#   sim/           the software CPU is unicorn's x86_64 engine (arch/arm64/sim_absent.c:
#                  `--cpu sim` says so and exits 2)
#   net_slirp.c    `--net user`: libslirp runs in the helper vmlab-slirp, which links Debian's
#                  shared libslirp and glib and is not cross-built
#                  (arch/arm64/net_slirp_absent.c); --net tap works
# Libraries: json-c, protobuf-c, zlib, zstd, seccomp from the :arm64 multiarch -dev packages
# (make deps); libfdt-dev is not co-installable with its amd64 twin, so its libfdt.a comes
# unpacked into build/arm64/sysroot by arch/arm64/fetch-debs.sh (apt-get download).
.DEFAULT_GOAL := all
# Its own tree under the x86 one, even when BUILD comes from the command line (a make that
# passes BUILD=build on, as make test does, must never mix arm64 objects into build/).
override BUILD := $(BUILD)/arm64
override CC := aarch64-linux-gnu-gcc
ARM64_SYSROOT := $(BUILD)/sysroot
ARM64_LIBDIR := /usr/lib/aarch64-linux-gnu
PKGS := json-c libprotobuf-c
PKG_CONFIG_ENV := PKG_CONFIG_LIBDIR=$(ARM64_LIBDIR)/pkgconfig:/usr/share/pkgconfig
LIB_DIRS := vmm vmm/kvm arch/arm64 devices devices/virtio devices/disk devices/net traces
LIB_EXCLUDE := devices/net/net_slirp.c arch/arm64/%_test.c
STATIC_LIBS = -static -L$(ARM64_SYSROOT)$(ARM64_LIBDIR) -ljson-c -lprotobuf-c -lfdt -lzstd -lz \
              -lseccomp -lpthread -lm -lrt
ARM64_FDT_A := $(ARM64_SYSROOT)$(ARM64_LIBDIR)/libfdt.a

$(ARM64_FDT_A): arch/arm64/fetch-debs.sh
	arch/arm64/fetch-debs.sh $(ARM64_SYSROOT)
	@touch $@
$(BUILD)/vmlab: | $(ARM64_FDT_A)
