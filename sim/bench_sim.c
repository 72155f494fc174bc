/* Benchmark of the software CPU: guest MIPS on a tight loop, the cost of an MMIO exit, a
 * PIO exit, an RDTSC and a timer interrupt, and boot-to-exit of a tiny guest (create, boot,
 * run to the exit port). Prints a table; writes $BENCH_JSON_DIR/sim.json when set.
 * Host time (this thread's CPU time) is read here only, never inside vmlab. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cpu_backend.h"
#include "vmm/memmap.h"

#define LOAD 0x100000ULL
#define RAM (4ULL << 20)

/* Guests (32-bit, entered through PVH). ECX holds the iteration count, set by the host
 * through the start_info argument: EBX. */
__asm__(
    ".section .rodata.simbench, \"a\"\n"
    ".code32\n"
    ".globl b_loop, b_loop_end\n"
    "b_loop:\n"
    "    mov %ebx, %ecx\n"
    "1:  dec %ecx\n"
    "    jnz 1b\n"
    "    out %al, $0xf4\n"
    "b_loop_end:\n"
    ".globl b_mmio, b_mmio_end\n"
    "b_mmio:\n"
    "    mov %ebx, %ecx\n"
    "1:  mov 0xd0000000, %eax\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    out %al, $0xf4\n"
    "b_mmio_end:\n"
    ".globl b_pio, b_pio_end\n"
    "b_pio:\n"
    "    mov %ebx, %ecx\n"
    "1:  out %al, $0x80\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    out %al, $0xf4\n"
    "b_pio_end:\n"
    ".globl b_rdtsc, b_rdtsc_end\n"
    "b_rdtsc:\n"
    "    mov %ebx, %ecx\n"
    "1:  rdtsc\n"
    "    dec %ecx\n"
    "    jnz 1b\n"
    "    out %al, $0xf4\n"
    "b_rdtsc_end:\n"
    /* LAPIC periodic timer every 1000 ns in a 32-bit IDT (gate 0x40), loop EBX times */
    ".globl b_irq, b_irq_end\n"
    "b_irq:\n"
    "    mov $0x300000, %esp\n"
    "    lgdt (0x100000 + b_irq_gdtr - b_irq)\n"
    "    ljmp $0x08, $(0x100000 + 2f - b_irq)\n"
    "2:\n"
    "    mov $(0x100000 + b_irq_handler - b_irq), %eax\n"
    "    mov $0x200000 + 0x40 * 8, %edi\n"
    "    mov %ax, (%edi)\n"
    "    movw $0x08, 2(%edi)\n"
    "    movw $0x8e00, 4(%edi)\n"
    "    shr $16, %eax\n"
    "    mov %ax, 6(%edi)\n"
    "    lidt (0x100000 + b_irq_idtr - b_irq)\n"
    "    movl $0x1ff, 0xfee000f0\n"
    "    movl $0xb, 0xfee003e0\n"
    "    mov %ebx, %edx\n"                 /* EBX bit 31: run with the timer masked */
    "    and $0x7fffffff, %ebx\n"
    "    shr $31, %edx\n"
    "    shl $16, %edx\n"
    "    or $0x20040, %edx\n"
    "    mov %edx, 0xfee00320\n"
    "    movl $1000, 0xfee00380\n"
    "    mov %ebx, %ecx\n"
    "    sti\n"
    "1:  dec %ecx\n"
    "    jnz 1b\n"
    "    cli\n"
    "    out %al, $0xf4\n"
    "b_irq_handler:\n"
    "    movl $0, 0xfee000b0\n"
    "    iret\n"
    "    .p2align 3\n"
    "b_irq_gdt: .quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff\n"
    "b_irq_gdtr: .word 23\n"
    "    .long 0x100000 + b_irq_gdt - b_irq\n"
    "b_irq_idtr: .word 256 * 8 - 1\n"
    "    .long 0x200000\n"
    "b_irq_end:\n"
    ".code64\n"
    ".text\n");

extern const unsigned char b_loop[], b_loop_end[], b_mmio[], b_mmio_end[], b_pio[], b_pio_end[],
    b_rdtsc[], b_rdtsc_end[], b_irq[], b_irq_end[];

static volatile int stop;

static int dev_read(void *o, uint64_t off, unsigned size, uint64_t *v)
{
    (void)o; (void)off; (void)size;
    *v = 0;
    return 0;
}
static int dev_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
    (void)o; (void)off; (void)size; (void)v;
    return 0;
}
static int exit_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
    (void)o; (void)off; (void)size; (void)v;
    stop = 1;
    return 0;
}
static const struct bus_ops dev_ops = { dev_read, dev_write }, exit_ops = { NULL, exit_write };

/* CPU time of this thread: the machine is shared, wall time would measure the neighbours */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct result { double seconds; uint64_t insns; uint64_t irqs; };

/* Creates a machine, runs `code` with EBX = n until the exit port; wall time of the run
 * (or of everything with whole = 1). */
static int run(const unsigned char *code, const unsigned char *end, uint64_t n, int whole,
               struct result *r)
{
    void *ram = aligned_alloc(4096, RAM);
    struct guest_mem mem;
    struct bus mmio, pio;
    struct vm_stats stats = { 0 };
    struct cpu *cpu;
    struct cpu_stop st;

    if (!ram)
        return -1;
    memset(ram, 0, RAM);
    double t0 = now();
    guest_mem_init_buffer(&mem, ram, RAM);
    bus_init(&mmio, BUS_MMIO);
    bus_init(&pio, BUS_PIO);
    bus_register(&mmio, 0xd0000000, 0x1000, &dev_ops, NULL, "dev");
    bus_register(&pio, 0x80, 1, &dev_ops, NULL, "port80");
    bus_register(&pio, 0xf4, 1, &exit_ops, NULL, "exit");
    stop = 0;
    struct cpu_env env = { .mem = &mem, .mmio = &mmio, .pio = &pio, .stats = &stats,
                           .stop_requested = &stop };
    if (sim_cpu_backend.create(&env, &cpu)) {
        free(ram);
        return -1;
    }
    memcpy((char *)ram + LOAD, code, (size_t)(end - code));
    struct cpu_boot boot = { CPU_BOOT_PVH32, LOAD, n };
    sim_cpu_backend.boot(cpu, &boot);
    double t1 = now();
    sim_cpu_backend.run(cpu, &st);
    double t2 = now();
    sim_cpu_backend.destroy(cpu);
    double t3 = now();
    free(ram);
    if (st.reason != CPU_STOP_REQUESTED) {
        fprintf(stderr, "bench_sim: guest stopped unexpectedly: %s\n", st.detail);
        return -1;
    }
    r->seconds = whole ? t3 - t0 : t2 - t1;
    r->insns = stats.insns;
    r->irqs = stats.exits[EXIT_IRQ];
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

extern char **environ;

/* Median wall time of `$BUILD/vmlab run --serial none $BUILD/guest/hello.elf` (the whole
 * process: exec, ELF load, FDT, run to the exit port), or -1 if it is not built. */
static double vmlab_boot_ms(void)
{
    const char *build = getenv("BUILD");
    char vmlab[4096], elf[4096];
    double t[11];

    snprintf(vmlab, sizeof(vmlab), "%s/vmlab", build && *build ? build : "build");
    snprintf(elf, sizeof(elf), "%s/guest/hello.elf", build && *build ? build : "build");
    if (access(vmlab, X_OK) || access(elf, R_OK))
        return -1;
    char *argv[] = { vmlab, "run", "--quiet", "--serial", "none", elf, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    for (int i = 0; i < 11; i++) {
        pid_t pid;
        int status;
        double t0 = wall();
        if (posix_spawn(&pid, vmlab, &fa, NULL, argv, environ) || waitpid(pid, &status, 0) < 0)
            return -1;
        t[i] = wall() - t0;
        /* hello exits through the debug port with 0: status 1 */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
            return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    qsort(t, 11, sizeof(t[0]), cmp);
    return t[5] * 1e3;
}


int main(void)
{
    struct result loop, mmio, pio, tsc, irq, irq_masked, base;
    const uint64_t n_loop = 200000000, n_exit = 2000000;

    if (run(b_loop, b_loop_end, n_loop, 0, &loop) || run(b_loop, b_loop_end, n_exit, 0, &base) ||
        run(b_mmio, b_mmio_end, n_exit, 0, &mmio) || run(b_pio, b_pio_end, n_exit, 0, &pio) ||
        run(b_rdtsc, b_rdtsc_end, n_exit, 0, &tsc) || run(b_irq, b_irq_end, 20000000, 0, &irq) ||
        run(b_irq, b_irq_end, 20000000 | (1ULL << 31), 0, &irq_masked))
        return 1;
    double boot[21];
    for (int i = 0; i < 21; i++) {
        struct result r;
        if (run(b_loop, b_loop_end, 1, 1, &r))
            return 1;
        boot[i] = r.seconds;
    }
    qsort(boot, 21, sizeof(boot[0]), cmp);

    double mips = (double)loop.insns / loop.seconds / 1e6;
    double per_iter = base.seconds / (double)n_exit;   /* the bare dec/jnz loop */
    double mmio_ns = (mmio.seconds / (double)n_exit - per_iter) * 1e9;
    double pio_ns = (pio.seconds / (double)n_exit - per_iter) * 1e9;
    double tsc_ns = (tsc.seconds / (double)n_exit - per_iter) * 1e9;
    double irq_ns = irq.irqs ? (irq.seconds - irq_masked.seconds) / (double)irq.irqs * 1e9 : 0;
    double boot_ms = boot[10] * 1e3;
    double hello_ms = vmlab_boot_ms();

    printf("%-36s %12s\n", "software CPU (unicorn 2.0.1)", "value");
    printf("%-36s %12.0f\n", "tight loop, MIPS", mips);
    printf("%-36s %12.1f\n", "MMIO read exit, ns", mmio_ns);
    printf("%-36s %12.1f\n", "PIO OUT exit, ns", pio_ns);
    printf("%-36s %12.1f\n", "RDTSC (virtual), ns", tsc_ns);
    printf("%-36s %12.1f\n", "LAPIC timer interrupt, ns", irq_ns);
    printf("%-36s %12.3f\n", "boot-to-exit tiny guest, ms (median)", boot_ms);
    if (hello_ms >= 0)
        printf("%-36s %12.1f\n", "vmlab run hello.elf, ms (wall, median)", hello_ms);
    printf("  (thread CPU time; %llu interrupts delivered; boot-to-exit = create + boot + run +"
           " destroy)\n",
           (unsigned long long)irq.irqs);

    const char *dir = getenv("BENCH_JSON_DIR");
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/sim.json", dir);
        FILE *f = fopen(path, "w");
        if (!f) {
            perror(path);
            return 1;
        }
        fprintf(f, "{\n  \"tight_loop_mips\": %.1f,\n  \"mmio_exit_ns\": %.1f,\n"
                   "  \"pio_exit_ns\": %.1f,\n  \"rdtsc_ns\": %.1f,\n  \"timer_irq_ns\": %.1f,\n"
                   "  \"boot_to_exit_ms\": %.3f,\n  \"vmlab_hello_wall_ms\": %.1f\n}\n",
                mips, mmio_ns, pio_ns, tsc_ns, irq_ns, boot_ms, hello_ms);
        fclose(f);
    }
    return 0;
}
