/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sfork_channel.h - channels for the directional conversation between the
 * parent and the child of sfork(3).  Link with -lsfork.
 *
 * This header is the documentation.  Two kinds of channel, each laid out
 * entirely inside an sfork region (no file descriptor, no extra memory):
 *
 *   publish channel   for PARENT_TO_CHILD / CHILD_TO_PARENT regions (works on
 *                     BIDIRECTIONAL ones too): the writing side publishes
 *                     snapshots, the read-only side reads consistent copies
 *                     and may wait for the next one.  The reader never
 *                     stores to the region (it cannot: the kernel maps it
 *                     read-only), so the scheme is a sequence counter per
 *                     slot ("seqlock" with several slots), not a lock.
 *
 *   message ring      for BIDIRECTIONAL regions: two single-producer
 *                     single-consumer byte rings, one per direction, carrying
 *                     variable-length messages (up to about half the region)
 *                     that wrap around the end of the ring.  Blocking and
 *                     non-blocking send and receive.
 *
 * COMMON RULES
 *
 *   Waiting.  A blocking call that has to wait first spins: it polls the
 *   channel's word for up to the channel's spin window (SFORK_CHAN_SPIN_NS
 *   unless sfork_chan_set_spin() changed it; never longer than the call's
 *   timeout), once per call.  A peer that answers within the window is
 *   seen without any system call on either side, which is what makes a
 *   blocking channel faster than a pipe: a futex wake-up plus a context
 *   switch costs what a pipe's wake-up does.  Only then does it sleep in
 *   FUTEX_WAIT on a 32-bit word inside the region (shared futexes, never
 *   FUTEX_PRIVATE_FLAG, so they work between the two processes and from
 *   a read-only mapping); the other side wakes it with FUTEX_WAKE.  An
 *   idle waiter therefore burns at most one window of CPU per call and
 *   then sleeps (it wakes once per SFORK_CHAN_POLL_MS to check its peer,
 *   see below).  Signal handlers do not interrupt a wait (like
 *   pthread_cond_wait(3)): after a handler the wait goes on.
 *
 *   The window.  SFORK_CHAN_SPIN_NS (200 us) was chosen by measurement on
 *   the slowest set-up the library runs on (QEMU TCG, 2 vCPUs; bench/,
 *   publish and ping-pong through the channels with windows from 0 to
 *   400 us, one boot, host loaded): a one-way hand-off to a sleeping
 *   receiver takes 20-35 us (futex) to 45-100 us (pipe) there, one to a
 *   spinning receiver about 2 us.  A window pays only when it outlasts
 *   the peer's turnaround; in the publish benchmark that is the writer's
 *   own wake-up from the acknowledging pipe (60-80 us at p90), which 100
 *   us windows caught only now and then and 200 us ones mostly; 400 us
 *   caught no more.  Spinning longer than a wake-up or two costs more CPU
 *   than the sleep it saves, and an idle waiter pays the window once per
 *   call: over 1 s idle a receiver used 0.3-0.5 % of a CPU with any
 *   window, nearly all of it the peer checks of its 100 ms slices.  On
 *   fast hardware (a wake-up of about 5 us) the window costs only waits
 *   that end within it; a set-up that knows its peer's turnaround sets
 *   its own with sfork_chan_set_spin().
 *
 *   Waking.  A waker enters the kernel only when a waiter sleeps: a ring's
 *   receiver and sender each announce themselves in the ring before they
 *   sleep (a waiter flag, Dekker-style with the position, see "Memory
 *   model"), so a send or receive whose peer is awake or spinning makes
 *   no system call.  The publish channel cannot do this: its readers must
 *   not store into the region (a PARENT_TO_CHILD child's mapping is
 *   read-only; any word they could announce themselves in would have to
 *   be writable by them), and the futex word's waiters are known only to
 *   the kernel.  So a publish always makes one FUTEX_WAKE, waiters or not;
 *   it comes after the snapshot is visible, so a spinning reader sees the
 *   snapshot without waiting for it, and with no sleeper the call only
 *   looks up the futex's hash bucket and returns.  Where the publisher's
 *   system call matters, use a BIDIRECTIONAL region with the message ring.
 *
 *   Timeouts.  @timeout is a relative struct timespec measured on
 *   CLOCK_MONOTONIC; NULL waits without limit; {0, 0} only tries once.
 *   A tv_nsec outside [0, 1e9) or a negative tv_sec is EINVAL.
 *
 *   Peer death.  A side that dies (even by SIGKILL, in the middle of a
 *   call) never makes the other side hang.  Each channel records the PIDs
 *   of its sides (the writer's at sfork_pub_init(); both at
 *   sfork_ring_init()/sfork_ring_attach()).  A blocking call sleeps in
 *   slices of at most SFORK_CHAN_POLL_MS (100 ms); when a slice passes
 *   without progress it checks the peer and returns EPIPE when it is gone:
 *     - the peer is our parent: getppid() no longer returns its PID;
 *     - the peer is our child: waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT)
 *       reports it exited (the child stays unreaped, its status is left
 *       for the caller's own wait);
 *     - otherwise /proc/PID/stat is gone or shows a zombie, or, without
 *       /proc, kill(pid, 0) fails with ESRCH.
 *   So a dead peer is noticed within about 100 ms plus the check.  Limits:
 *   a peer whose PID is not recorded yet (the ring's other side before it
 *   attached, when sfork_ring_init() was given peer 0; the publisher before
 *   sfork_pub_init()) cannot be checked, only the timeout ends that wait;
 *   and if the dead peer's PID were reused by an unrelated process within
 *   the wait, it would count as alive (again the timeout is the bound).
 *   Calls that do not have to wait never check (the fast path makes no
 *   system call): sfork_ring_send() to a dead peer succeeds while there is
 *   room, and sfork_ring_recv() first delivers every message the peer sent
 *   before it died, like a pipe, and only then fails with EPIPE.
 *
 *   Memory model.  C11 atomics with acquire/release ordering and seq_cst
 *   fences for the waiter flags (Dekker-style: a waker either sees the
 *   waiter's flag or the waiter sees the new state).  Payload bytes are
 *   copied with memcpy().  The layout is private to libsfork; both sides
 *   must use the same library version (a magic and a version are checked).
 *
 *   Concurrency.  A publish channel has one publisher at a time and any
 *   number of readers.  Each ring direction has exactly one sending and one
 *   receiving thread at a time (a second concurrent sender on the same side
 *   corrupts the ring); send and receive of one side may run in two
 *   threads at once.
 */
#ifndef SFORK_CHANNEL_H
#define SFORK_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;	/* <time.h>, POSIX */

/* Flags for sfork_ring_send() and sfork_ring_recv(). */
#define SFORK_NONBLOCK		0x1	/* fail with EAGAIN instead of waiting */

/* Sides of a ring: the side that sends on ring 0 and the one on ring 1. */
#define SFORK_SIDE_PARENT	0
#define SFORK_SIDE_CHILD	1

/* Longest sleep between two peer checks in a blocking call. */
#define SFORK_CHAN_POLL_MS	100

/* A new channel's spin window, and the longest sfork_chan_set_spin() sets. */
#define SFORK_CHAN_SPIN_NS	200000
#define SFORK_CHAN_SPIN_MAX_NS	10000000

/* Bytes of a region taken by the channels' own headers. */
#define SFORK_PUB_HEADER	64	/* plus 16 bytes before each slot */
#define SFORK_RING_HEADER	320	/* plus 8 bytes before each message */

/* ======================================================================
 * Publish channel
 * ====================================================================== */

/*
 * NAME
 *   sfork_pub_init - make a region a publish channel (writer)
 *
 * SYNOPSIS
 *   int sfork_pub_init(void *region, size_t size, size_t max_snapshot);
 *
 * DESCRIPTION
 *   Called once by the writing side (the parent of a PARENT_TO_CHILD
 *   region, the child of a CHILD_TO_PARENT one) before its first publish,
 *   on the region (@region, @size as given to sfork(), or any sub-range
 *   that is 64-byte aligned).  The region is divided into a header and
 *   between 2 and 8 slots of max_snapshot bytes each (slot size
 *   16 + max_snapshot rounded up to 64); more slots make it rarer that a
 *   reader must retry because the writer reused the slot it was copying.
 *   Records getpid() as the writer's PID for the readers' peer checks.
 *
 *   Initialisation protocol: no reader action is needed.  sfork() returns
 *   in both processes at once and the region starts zero-filled, which
 *   reads as "nothing published yet": a reader that starts first sees
 *   EAGAIN from sfork_pub_read() and can sleep in
 *   sfork_pub_wait(region, 0, timeout) until the first snapshot.
 *   Calling it again on a channel in use restarts the sequence at 0 and
 *   confuses readers: don't.
 *
 * RETURN VALUE
 *   0 on success, -1 with errno set on error.
 *
 * ERRORS
 *   EINVAL  @region is NULL or not 64-byte aligned, @max_snapshot is 0, or
 *           @size is too small for the header and two slots of
 *           @max_snapshot bytes.
 */
int sfork_pub_init(void *region, size_t size, size_t max_snapshot);

/*
 * NAME
 *   sfork_pub_publish - publish a snapshot (writer)
 *
 * SYNOPSIS
 *   int sfork_pub_publish(void *region, const void *data, size_t len);
 *
 * DESCRIPTION
 *   Copies @len bytes from @data into the next slot and makes it the
 *   channel's newest snapshot, with the next sequence number (1 for the
 *   first publish, then 2, 3, ...).  Never blocks: the writer overwrites
 *   the oldest slot whether or not a reader has seen it (readers may skip
 *   snapshots, they never see a torn or an older one).  Wakes every
 *   reader sleeping in sfork_pub_wait() with FUTEX_WAKE; since the readers
 *   cannot store a "waiting" flag in a read-only region, this is one
 *   futex system call per publish, waiters or not.
 *   Only one thread may publish at a time.  @len may be 0.
 *
 * RETURN VALUE
 *   0 on success, -1 with errno set on error.
 *
 * ERRORS
 *   EINVAL    the region is not an initialised publish channel, or @data
 *             is NULL with @len > 0.
 *   EMSGSIZE  @len is larger than the channel's max_snapshot.
 */
int sfork_pub_publish(void *region, const void *data, size_t len);

/*
 * NAME
 *   sfork_pub_read - copy the newest snapshot (reader)
 *
 * SYNOPSIS
 *   ssize_t sfork_pub_read(const void *region, void *buf, size_t buflen,
 *                          uint64_t *seq);
 *
 * DESCRIPTION
 *   Copies the newest complete snapshot into @buf and stores its sequence
 *   number in *@seq (if @seq is not NULL).  Only loads from the region, so
 *   it works on a read-only mapping.  If the writer overwrites the slot
 *   during the copy, the copy is detected as torn and retried with the
 *   then newest snapshot; the writer is never slowed down by readers.
 *   A reader retrying for a long time yields the CPU between attempts; if
 *   the writer dies the last complete snapshot stays readable (the writer
 *   only ever writes into a slot that is not the newest).
 *
 * RETURN VALUE
 *   The snapshot's length in bytes, or -1 with errno set.
 *
 * ERRORS
 *   EAGAIN    nothing has been published yet (or the writer has not called
 *             sfork_pub_init() yet).
 *   EMSGSIZE  @buflen is smaller than the newest snapshot; *@seq is set to
 *             its sequence number, nothing is copied (sfork_pub_max() tells
 *             the size that always suffices).
 *   EINVAL    @region or @buf (with @buflen > 0) is NULL.
 *   EBADMSG   the channel's header is not one sfork_pub_init() wrote.
 */
ssize_t sfork_pub_read(const void *region, void *buf, size_t buflen,
		       uint64_t *seq);

/*
 * NAME
 *   sfork_pub_wait - wait for a snapshot newer than one already seen (reader)
 *
 * SYNOPSIS
 *   int sfork_pub_wait(const void *region, uint64_t last_seq,
 *                      const struct timespec *timeout);
 *
 * DESCRIPTION
 *   Returns as soon as the channel's newest sequence number is greater
 *   than @last_seq (at once if it already is); pass 0 to wait for the first
 *   snapshot, even before the writer initialised the channel.  Sleeps in
 *   FUTEX_WAIT on the channel's 32-bit sequence word, which works from the
 *   read-only mapping.  Follow it with sfork_pub_read(), which may return
 *   an even newer snapshot.
 *
 * RETURN VALUE
 *   0 when a newer snapshot exists, -1 with errno set otherwise.
 *
 * ERRORS
 *   ETIMEDOUT  @timeout passed first.
 *   EPIPE      the writer (the PID sfork_pub_init() recorded) is dead and
 *              there is no newer snapshot: none will ever come.
 *   EINVAL     @region is NULL or @timeout is invalid.
 */
int sfork_pub_wait(const void *region, uint64_t last_seq,
		   const struct timespec *timeout);

/*
 * NAME
 *   sfork_pub_max - largest snapshot of a publish channel
 *
 * SYNOPSIS
 *   size_t sfork_pub_max(const void *region);
 *
 * RETURN VALUE
 *   max_snapshot as given to sfork_pub_init(), or 0 when the region is not
 *   (yet) an initialised publish channel.  No errors.
 */
size_t sfork_pub_max(const void *region);

/* ======================================================================
 * Message ring
 * ====================================================================== */

/*
 * NAME
 *   sfork_ring_init - make a BIDIRECTIONAL region a pair of message rings
 *
 * SYNOPSIS
 *   int sfork_ring_init(void *region, size_t size, int side, pid_t peer);
 *
 * DESCRIPTION
 *   Formats @size bytes at @region (both sides must be able to store: the
 *   receiver of each direction writes its read position) as two rings,
 *   one per direction, each of capacity
 *       cap = ((size - SFORK_RING_HEADER) / 2) rounded down to 8, at most 1 GiB,
 *   and attaches the caller as @side (SFORK_SIDE_PARENT or
 *   SFORK_SIDE_CHILD; the names are conventions, any two processes sharing
 *   the region can use the two sides).  @peer is the other side's PID if
 *   known (the parent passes sfork()'s return value) or 0; it is what the
 *   caller's blocking calls check until the other side attaches.
 *   A message of n bytes takes 8 + n rounded up to 8 bytes of its ring, so
 *   the largest message is cap - 8 bytes (sfork_ring_max()), about half
 *   the region; messages wrap around the end of the ring byte-wise.
 *
 *   Initialisation protocol: exactly one side calls sfork_ring_init(),
 *   the other calls sfork_ring_attach(), in any order: sfork() returns in
 *   both processes at once, and attach sleeps until init has published
 *   the header (it then wakes the attacher).  Usually:
 *
 *       pid = sfork(size, SFORK_BIDIRECTIONAL, &addr);
 *       if (pid)
 *               sfork_ring_init(addr, size, SFORK_SIDE_PARENT, pid);
 *       else
 *               sfork_ring_attach(addr, SFORK_SIDE_CHILD, &ten_seconds);
 *
 *   Neither side may send or receive before its own init/attach returned.
 *
 * RETURN VALUE
 *   0 on success, -1 with errno set on error.
 *
 * ERRORS
 *   EINVAL  @region is NULL or not 64-byte aligned, @side is not 0 or 1, or
 *           @size leaves less than 64 bytes per ring.
 */
int sfork_ring_init(void *region, size_t size, int side, pid_t peer);

/*
 * NAME
 *   sfork_ring_attach - join a ring as the other side
 *
 * SYNOPSIS
 *   int sfork_ring_attach(void *region, int side,
 *                         const struct timespec *timeout);
 *
 * DESCRIPTION
 *   Waits until the other side's sfork_ring_init() has completed (FUTEX_WAIT
 *   on the ring's ready word, at once if it has), then records getpid() as
 *   @side's PID, so the peer's blocking calls can notice this process
 *   dying.  The initialiser's death before init cannot be detected: pass
 *   a timeout.  Another process may re-attach to a side later (for example
 *   a forked worker taking over); the last attach wins.
 *
 * RETURN VALUE
 *   0 on success, -1 with errno set on error.
 *
 * ERRORS
 *   ETIMEDOUT  the ring was not initialised within @timeout.
 *   EINVAL     @region is NULL, @side is not 0 or 1, or @timeout is invalid.
 *   EBADMSG    the region holds a ring of another libsfork version.
 */
int sfork_ring_attach(void *region, int side, const struct timespec *timeout);

/*
 * NAME
 *   sfork_ring_send - send a message to the other side
 *
 * SYNOPSIS
 *   ssize_t sfork_ring_send(void *region, int side, const void *msg,
 *                           size_t len, int flags,
 *                           const struct timespec *timeout);
 *
 * DESCRIPTION
 *   Appends the @len bytes at @msg as one message to @side's outgoing ring.
 *   When the ring lacks room for it, waits (unless @flags has
 *   SFORK_NONBLOCK) until the receiver has freed enough; messages are
 *   never split or merged.  The receiver is woken with FUTEX_WAKE only if
 *   it is sleeping (it keeps a waiter flag), so a send that finds room
 *   makes no system call.  A sender waiting for room records how much it
 *   needs, and the receiver wakes it only once that much is free.
 *   @len may be 0 (an empty message).
 *
 * RETURN VALUE
 *   @len on success, -1 with errno set on error (nothing was sent).
 *
 * ERRORS
 *   EAGAIN     SFORK_NONBLOCK and not enough room.
 *   ETIMEDOUT  not enough room within @timeout.
 *   EPIPE      the receiving side is dead (noticed only while waiting).
 *   EMSGSIZE   @len > sfork_ring_max(region).
 *   EINVAL     not an initialised ring, @side not 0 or 1, unknown @flags,
 *              @msg NULL with @len > 0, or @timeout invalid.
 *   EBADMSG    the ring's positions are inconsistent (memory corrupted).
 */
ssize_t sfork_ring_send(void *region, int side, const void *msg, size_t len,
			int flags, const struct timespec *timeout);

/*
 * NAME
 *   sfork_ring_recv - receive the next message from the other side
 *
 * SYNOPSIS
 *   ssize_t sfork_ring_recv(void *region, int side, void *buf,
 *                           size_t buflen, int flags,
 *                           const struct timespec *timeout);
 *
 * DESCRIPTION
 *   Removes the oldest message of @side's incoming ring and copies it into
 *   @buf.  When the ring is empty, waits (unless @flags has SFORK_NONBLOCK)
 *   for a message.  Messages arrive whole and in the order they were sent.
 *   The sender is woken with FUTEX_WAKE only if it is sleeping for room
 *   and enough is now free.
 *
 * RETURN VALUE
 *   The message's length (possibly 0), or -1 with errno set on error.
 *
 * ERRORS
 *   EAGAIN     SFORK_NONBLOCK and the ring is empty.
 *   ETIMEDOUT  no message within @timeout.
 *   EPIPE      the ring is empty and the sending side is dead.
 *   EMSGSIZE   @buflen is smaller than the message, which stays in the ring
 *              (sfork_ring_max() bytes always suffice).
 *   EINVAL     not an initialised ring, @side not 0 or 1, unknown @flags,
 *              @buf NULL with @buflen > 0, or @timeout invalid.
 *   EBADMSG    the next message's header is inconsistent (corrupted).
 */
ssize_t sfork_ring_recv(void *region, int side, void *buf, size_t buflen,
			int flags, const struct timespec *timeout);

/*
 * NAME
 *   sfork_ring_max - largest message of a ring
 *
 * SYNOPSIS
 *   size_t sfork_ring_max(const void *region);
 *
 * RETURN VALUE
 *   The largest @len sfork_ring_send() accepts (the capacity of one
 *   direction minus 8), or 0 when the region is not (yet) an initialised
 *   ring.  No errors.
 */
size_t sfork_ring_max(const void *region);

/* ======================================================================
 * Both kinds
 * ====================================================================== */

/*
 * NAME
 *   sfork_chan_set_spin - set a channel's spin window
 *
 * SYNOPSIS
 *   int sfork_chan_set_spin(void *region, unsigned long spin_ns);
 *
 * DESCRIPTION
 *   Sets how long the waiters of an initialised publish channel or ring
 *   poll before they sleep (see "Waiting"): @spin_ns nanoseconds, at most
 *   SFORK_CHAN_SPIN_MAX_NS (larger values are clamped), 0 to sleep at
 *   once.  The window is stored in the channel, so it holds for both
 *   sides; init sets SFORK_CHAN_SPIN_NS.  Call it on a side that can store
 *   into the region (the publisher of a publish channel), after init;
 *   waits already spinning keep their window.
 *
 * RETURN VALUE
 *   0 on success, -1 with errno set on error.
 *
 * ERRORS
 *   EINVAL  @region is NULL or not an initialised publish channel or ring.
 */
int sfork_chan_set_spin(void *region, unsigned long spin_ns);

#ifdef __cplusplus
}
#endif

#endif /* SFORK_CHANNEL_H */
