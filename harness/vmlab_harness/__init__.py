"""vmlab's scenario harness: runs scenario files on the software CPU, KVM or the QEMU peer,
checks behaviour (exit status, serial output, golden traces, deterministic metrics compared
exactly) and host-time performance (permutation test against stored baselines; a paired one
between two builds run interleaved by `ab`). harness/README.md describes it."""
