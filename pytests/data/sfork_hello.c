/*
 * A user of the installed library (pytests/test_packaging.py): built with
 * `pkg-config --cflags --libs sfork` and -static, run in a guest.  The parent
 * writes a string into a PARENT_TO_CHILD region after sfork() returned, then
 * tells the child through a pipe; the child must read that string.  Exit 0
 * only if it did.
 */
#include <sfork.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG "written by the parent after sfork"

int main(void)
{
	void *addr;
	int go[2], status;
	pid_t pid;
	char c;

	if (pipe(go)) {
		perror("pipe");
		return 1;
	}
	pid = sfork(1 << 16, PARENT_TO_CHILD | SFORK_LAZY, &addr);
	if (pid < 0) {
		perror("sfork");
		return 1;
	}
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		if (strcmp(addr, MSG) != 0) {
			fprintf(stderr, "child read \"%.40s\"\n", (char *)addr);
			_exit(3);
		}
		_exit(0);
	}
	close(go[0]);
	strcpy(addr, MSG);
	if (write(go[1], "g", 1) != 1) {
		perror("write");
		return 1;
	}
	if (waitpid(pid, &status, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child failed: wait status %#x\n", status);
		return 1;
	}
	printf("sfork_hello: the child read \"%s\"\n", MSG);
	return 0;
}
