#include <sfork.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

int main(void)
{
	void *addr;
	pid_t pid = sfork(1 << 20, PARENT_TO_CHILD | SFORK_LAZY, &addr);

	if (pid < 0) {
		perror("sfork");	/* ENOSYS: modprobe sfork */
		return 1;
	}
	if (pid == 0) {
		/* the child may read; a store here is SIGSEGV */
		return 0;
	}
	strcpy(addr, "from the parent");
	waitpid(pid, NULL, 0);
	return 0;
}
