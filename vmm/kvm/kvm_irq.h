/* How the KVM backend delivers device interrupts: irqfd with resample (the default where
 * KVM offers it) or KVM_IRQ_LINE (fallback). Tests and diagnostics ask which one. */
#ifndef VMLAB_KVM_IRQ_H
#define VMLAB_KVM_IRQ_H

struct cpu;

/* "irqfd" or "irq_line"; "" for a cpu that is not a KVM one built with <linux/kvm.h>. */
const char *kvm_irq_path(const struct cpu *cpu);

#endif
