/* tools/cuda_emu: the CUDA backend's device code run on the CPU (emu.h), each kernel against a
 * plain reference. Prints one line per check and exits non-zero when one fails. */
#include <cstdio>

int emu_check_attention();
int emu_check_kernels();

int main() {
    printf("attention.cu under emulation:\n");
    int f = emu_check_attention();
    printf("kernels.cu under emulation:\n");
    f = emu_check_kernels();
    printf("%s\n", f ? "some checks FAIL" : "every check passes");
    return f ? 1 : 0;
}
