/* Makes this process see an AVX2-only x86-64 CPU (no AVX-512, AVX-VNNI, AMX), as on the
 * AMD EPYC machines deployments get, so that the same binaries can be benchmarked as they
 * would run there. Loaded with LD_PRELOAD: it turns on CPUID faulting (Linux
 * ARCH_SET_CPUID, on CPUs that report cpuid_fault), and answers each trapped CPUID with the
 * real one minus those features. Libraries that pick kernels by CPUID (oneDNN in OpenVINO,
 * ONNX Runtime's MLAS, OpenCV, NumPy, Rust's std_detect) then choose their AVX2 code.
 * glibc's loader has already asked before this runs, so its string functions may still use
 * AVX-512: a small part of the time. At exit, GALLERY_AVX2_ONLY_REPORT=1 prints how many
 * CPUID instructions were answered, which tells whether a hot loop asks it. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile unsigned long answered;

static void masked_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  /* CPUID itself would trap again: faulting is off only while the kernel runs this
   * handler's sigreturn, so read the real answer with faulting briefly off. */
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
  if (leaf == 7 && sub == 0) {
    /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
    r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
              (1u << 30) | (1u << 31));
    /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
    r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, AVX512-FP16 23, AMX-TILE 24,
     * AMX-INT8 25 */
    r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
              (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    /* EAX: AVX-VNNI 4, AVX512-BF16 5, AMX-FP16 21, AVX-IFMA 23 */
    r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
    /* EDX: AVX-VNNI-INT8 4, AVX-NE-CONVERT 5, AMX-COMPLEX 8, AVX10 19 */
    r[3] &= ~((1u << 4) | (1u << 5) | (1u << 8) | (1u << 19));
  } else if (leaf == 0xd && sub == 0) {
    /* XSAVE components the OS may enable: drop opmask/ZMM (5-7) and AMX tiles (17-18). */
    r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
  } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
    r[0] = r[1] = r[2] = r[3] = 0;
  }
}

static void on_sigsegv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = context;
  greg_t *g = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)g[REG_RIP];
  if (ip[0] != 0x0f || ip[1] != 0xa2) {
    /* A real fault: die of it as the process would have. */
    signal(sig, SIG_DFL);
    return;
  }
  unsigned r[4];
  masked_cpuid((unsigned)g[REG_RAX], (unsigned)g[REG_RCX], r);
  g[REG_RAX] = r[0];
  g[REG_RBX] = r[1];
  g[REG_RCX] = r[2];
  g[REG_RDX] = r[3];
  g[REG_RIP] += 2;
  answered++;
  (void)info;
}

static void report(void) {
  fprintf(stderr, "avx2-only: answered %lu CPUID instructions in pid %d\n", answered, getpid());
}

__attribute__((constructor)) static void avx2_only(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsegv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0 || syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
    fprintf(stderr, "avx2-only: this CPU or kernel cannot fault on CPUID (no cpuid_fault in "
                    "/proc/cpuinfo): cannot hide AVX-512 from this process\n");
    _exit(70);
  }
  const char *r = getenv("GALLERY_AVX2_ONLY_REPORT");
  if (r && *r == '1') atexit(report);
}
