/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel module helpers of the LTP test API.  Written for sfork from LTP's
 * documented API (include/tst_module.h signatures); the implementation
 * (tst_module.c) is our own.
 *
 * The .ko named mod_name is looked for in the current directory,
 * $LTPROOT/testcases/bin, the test binary's directory and
 * /lib/modules/$(uname -r)/extra/; not found is TCONF.  Loading runs
 * insmod (TBROK if it fails); unloading runs rmmod, retried for one second
 * (50 times, 20 ms apart) before TBROK.
 */
#ifndef TST_MODULE_H
#define TST_MODULE_H

#include <stdbool.h>

void tst_module_exists_(void (cleanup_fn)(void), const char *mod_name,
			char **mod_path);

/* *mod_path (if not NULL) receives a malloc()ed path to free() */
static inline void tst_module_exists(const char *mod_name, char **mod_path)
{
	tst_module_exists_(NULL, mod_name, mod_path);
}

void tst_module_load_(void (cleanup_fn)(void), const char *mod_name,
		      char *const argv[]);

/* argv: NULL-terminated module parameters ("name=value"), or NULL */
static inline void tst_module_load(const char *mod_name, char *const argv[])
{
	tst_module_load_(NULL, mod_name, argv);
}

void tst_module_unload_(void (cleanup_fn)(void), const char *mod_name);

static inline void tst_module_unload(const char *mod_name)
{
	tst_module_unload_(NULL, mod_name);
}

#endif /* TST_MODULE_H */
