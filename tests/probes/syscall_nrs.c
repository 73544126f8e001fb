/* Workload for ktap's syscall-number tests: makes each syscall whose
 * number is given on the command line once, with arguments every one of
 * them refuses (descriptor -1, pointers the kernel cannot read, every flag
 * bit set), so none has an effect. Prints "NR RET ERRNO" per call on
 * stderr. Exits 1 if a call succeeded or the kernel does not know a number
 * (ENOSYS). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	const long bad = -1;
	int status = 0;
	for (int i = 1; i < argc; i++) {
		long nr = atol(argv[i]);
		errno = 0;
		long ret = syscall(nr, bad, bad, bad, bad, bad, bad);
		int err = errno;
		fprintf(stderr, "%ld %ld %s\n", nr, ret, strerror(err));
		if (ret >= 0 || err == ENOSYS)
			status = 1;
	}
	return status;
}
