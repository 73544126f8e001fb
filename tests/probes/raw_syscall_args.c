/* Three syscalls with known arguments and results, and nothing else a
 * dynamic loader would add (built -static): what a probe on raw_syscalls
 * rebuilds from the registers must equal the classic tracepoint's record. */
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    syscall(SYS_openat, AT_FDCWD, "/nonexistent/ktap-raw", O_RDONLY | O_CLOEXEC, 0);
    syscall(SYS_close, -9);
    syscall(SYS_exit_group, 3);
    return 0;
}
