// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress unload: rmmod attempts while regions live must fail; once
 * the last region is gone the module unloads and loads again.
 */
#include "stress.h"

/* ---- unload -------------------------------------------------------------- */

static char ko_path[512];
static char ko_params[256];

/* Load the module again if it is gone.  Async-signal-safe. */
static int ensure_loaded(void)
{
	int fd, r;

	if (access("/sys/module/sfork", F_OK) == 0)
		return 0;
	fd = open(ko_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = syscall(SYS_finit_module, fd, ko_params, 0);
	close(fd);
	return r && errno != EEXIST ? -1 : 0;
}

static void on_fatal(int sig)
{
	static const char msg[] = "sfork-stress unload: interrupted; loading sfork again\n";

	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(128 + sig);
	ensure_loaded();
	_exit(128 + sig);
}

/* The vermagic of a .ko must be this kernel's, or we would unload for nothing. */
static int ko_matches(const char *path)
{
	struct utsname u;
	struct stat sb;
	char *buf, *v;
	size_t rl;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;

	if (fd < 0 || fstat(fd, &sb) || uname(&u) || sb.st_size < 64) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	buf = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED)
		return 0;
	rl = strlen(u.release);
	v = memmem(buf, sb.st_size, "vermagic=", 9);
	if (v && (size_t)(v - buf) + 10 + rl < (size_t)sb.st_size)
		ok = !memcmp(v + 9, u.release, rl) && v[9 + rl] == ' ';
	munmap(buf, sb.st_size);
	return ok;
}

static int find_module(const char *opt)
{
	char cands[6][512], exe[512];
	struct utsname u;
	int k = 0;
	ssize_t n;

	uname(&u);
	if (opt)
		snprintf(cands[k++], 512, "%s", opt);
	if (getenv("SFORK_KO"))
		snprintf(cands[k++], 512, "%s", getenv("SFORK_KO"));
	snprintf(cands[k++], 512, "/lib/modules/%s/extra/sfork.ko", u.release);
	snprintf(cands[k++], 512, "/lib/modules/%s/updates/dkms/sfork.ko", u.release);
	snprintf(cands[k++], 512, "/lib/modules/sfork.ko");
	/* vng runs the host's tree: fuzz/bin/sfork-stress -> kmod/sfork.ko */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(cands[k++], 512, "%.*s/../../kmod/sfork.ko",
			 (int)(strrchr(exe, '/') - exe), exe);
	}
	for (int i = 0; i < k; i++) {
		if (access(cands[i], R_OK))
			continue;
		if (!ko_matches(cands[i])) {
			info("skipping %s: not built for this kernel", cands[i]);
			continue;
		}
		memcpy(ko_path, cands[i], sizeof(ko_path));
		return 0;
	}
	return -1;
}

static void save_params(void)
{
	static const char *const names[] = { "eager_threshold", "max_region_bytes" };
	char path[128], val[64];
	size_t off = 0;

	ko_params[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "/sys/module/sfork/parameters/%s", names[i]);
		if (read_str(path, val, sizeof(val)))
			continue;
		val[strcspn(val, "\n")] = 0;
		off += snprintf(ko_params + off, sizeof(ko_params) - off, "%s%s=%s",
				off ? " " : "", names[i], val);
	}
}

int mode_unload(long n, const char *mopt, uint64_t seed, int watchdog)
{
	long ebusy = 0, eagain = 0, churn_pairs = 0, own_pairs = 0, tries = 0, refmin = LONG_MAX,
	     refmax = 0;
	struct pairs_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int hp[2], bad = 0, st, unloaded = 0;
	pid_t holder = -1, churn[2] = { -1, -1 };
	double t0 = now_s(), end;
	void *addr = NULL;
	struct rng r;

	if (sh == MAP_FAILED)
		return 1;
	if (access("/sys/module/sfork", F_OK)) {
		failf("sfork is not loaded");
		return 1;
	}
	if (find_module(mopt)) {
		failf("no sfork.ko for this kernel (tried -m, $SFORK_KO, /lib/modules/$(uname -r)/extra, "
		      ".../updates/dkms, /lib/modules, ../../kmod next to this program): not unloading");
		return 1;
	}
	save_params();
	signal(SIGTERM, on_fatal);
	signal(SIGINT, on_fatal);
	signal(SIGHUP, on_fatal);
	signal(SIGALRM, on_fatal);
	alarm(watchdog);
	rng_init(&r, seed, 4242);
	info("%ld unload attempts while a region lives; reload from %s with \"%s\"", n, ko_path,
	     ko_params);

	/* One region held by a child the whole time. */
	if (pipe(hp)) {
		failf("pipe: %s", strerror(errno));
		return 1;
	}
	holder = sfork(PAGE, SFORK_BIDIRECTIONAL, &addr);
	if (holder == 0) {
		char c;

		close(hp[1]);
		while (read(hp[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(hp[0]);
	if (holder < 0) {
		failf("sfork of the held region: %s", strerror(errno));
		bad = 1;
		goto out;
	}
	munmap(addr, PAGE);	/* only the child holds it now */

	/* Regions that come and go meanwhile. */
	for (int i = 0; i < 2; i++) {
		churn[i] = fork();
		if (churn[i] == 0) {
			struct rng cr;

			rng_init(&cr, seed, 5000 + i);
			while (!atomic_load(&sh->pc.failed) && !atomic_load(&sh->ticket))
				if (one_pair(below(&cr, 3), below(&cr, 3), pick_len(&cr, 64), rnd(&cr),
					     &sh->pc)) {
					atomic_store(&sh->pc.failed, 1);
					_exit(1);
				}
			_exit(0);
		}
	}

	for (long i = 0; i < n && !bad; i++) {
		long ref = read_long("/sys/module/sfork/refcnt");

		if (ref >= 0 && ref < refmin)
			refmin = ref;
		if (ref > refmax)
			refmax = ref;
		if (syscall(SYS_delete_module, "sfork", O_NONBLOCK) == 0) {
			failf("attempt %ld: delete_module succeeded while a region exists (refcnt was %ld)",
			      i, ref);
			unloaded = 1;
			bad = 1;
			break;
		}
		if (errno == EBUSY) {
			ebusy++;
		} else if (errno == EAGAIN) {
			eagain++;
		} else {
			failf("attempt %ld: delete_module: %s (want EBUSY or EAGAIN)", i, strerror(errno));
			bad = 1;
		}
		if (i % 8 == 0) {
			if (one_pair(below(&r, 3), below(&r, 3), pick_len(&r, 64), rnd(&r), NULL))
				bad = 1;
			own_pairs++;
		}
		sleep_us(below(&r, 3000));
	}

out:
	/* Everything goes away. */
	atomic_store(&sh->ticket, 1);
	for (int i = 0; i < 2; i++)
		if (churn[i] > 0) {
			waitpid(churn[i], &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failf("churn worker %d: status 0x%x", i, st);
				bad = 1;
			}
		}
	churn_pairs = atomic_load(&sh->pc.sforks);
	close(hp[1]);
	if (holder > 0) {
		waitpid(holder, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failf("the holder of the region: status 0x%x", st);
			bad = 1;
		}
	}
	if (bad)
		kill_all_children();
	reap_all(30, NULL);
	munmap(sh, sizeof(*sh));

	if (!unloaded) {
		long live = settle_regions(0);

		if (live > 0) {
			failf("regions_live is %ld with every process gone", live);
			bad = 1;
		}
		/* One last unload must succeed (give the contract's 2 s for files to close). */
		end = now_s() + 2;
		do {
			tries++;
			if (syscall(SYS_delete_module, "sfork", O_NONBLOCK) == 0) {
				unloaded = 1;
				break;
			}
			sleep_us(20000);
		} while (now_s() < end);
		if (!unloaded) {
			failf("rmmod with no region left: %s after %ld tries (refcnt %ld)", strerror(errno),
			      tries, read_long("/sys/module/sfork/refcnt"));
			bad = 1;
		}
	}
	if (unloaded) {
		/* Gone: no device, sfork() says ENOSYS, then load it again. */
		if (access("/sys/module/sfork", F_OK) == 0 || access(SFORK_DEVICE, F_OK) == 0) {
			failf("after the unload /sys/module/sfork or " SFORK_DEVICE " is still there");
			bad = 1;
		}
		errno = 0;
		addr = NULL;
		if (sfork(PAGE, SFORK_BIDIRECTIONAL, &addr) == 0)
			_exit(0);
		if (errno != ENOSYS) {
			failf("sfork without the module: %s, want ENOSYS", strerror(errno));
			while (wait(NULL) > 0)
				;
			bad = 1;
		}
		if (ensure_loaded()) {
			failf("reloading %s: %s", ko_path, strerror(errno));
			return 1;
		}
		/* sfork works again, in every direction. */
		for (int d = 0; d < 3; d++)
			for (int a = 0; a < 3; a++)
				if (one_pair(d, a, PAGE * (1 + d + a * 40), seed + d * 3 + a, NULL))
					bad = 1;
		if (stat_get("regions_live") != 0 && settle_regions(0) != 0) {
			failf("after the reload regions_live is %ld", stat_get("regions_live"));
			bad = 1;
		}
	}
	if (ensure_loaded()) {
		failf("the module is not loaded and %s does not load: %s", ko_path, strerror(errno));
		bad = 1;
	}
	alarm(0);
	info("%ld unload attempts refused while a region lived (%ld EBUSY, %ld EAGAIN; module refcnt "
	     "%ld-%ld), %ld pairs meanwhile (%ld by churn workers); final unload %s after %ld "
	     "tries, reloaded, sfork works; %.1f s: %s",
	     ebusy + eagain, ebusy, eagain, refmin == LONG_MAX ? -1 : refmin, refmax,
	     churn_pairs + own_pairs, churn_pairs, unloaded ? "succeeded" : "FAILED", tries,
	     now_s() - t0, bad ? "FAILED" : "ok");
	return bad;
}
