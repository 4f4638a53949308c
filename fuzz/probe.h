/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * probe.h: touch one byte and report the fault instead of dying of it.
 * Shared by sfork-fuzz and sfork-stress, whose oracles are "a store on a
 * read-only side faults with SEGV_ACCERR at its address, and a store on a
 * writable side does not".  Per thread: threads probe concurrently.
 */
#ifndef SFORK_FUZZ_PROBE_H
#define SFORK_FUZZ_PROBE_H

/* What the last fault raised: signal, si_code, si_addr. */
struct probe {
	int sig, code;
	void *addr;
};

/* SIGSEGV and SIGBUS go to the probe; outside a probe they kill as usual. */
void probe_install(void);

/*
 * Store @v at @p (@store) or load from it.  0 if the access went through,
 * else the signal it raised, with the details in @out (may be NULL).
 */
int probe_access(char *p, int store, char v, struct probe *out);

#endif
