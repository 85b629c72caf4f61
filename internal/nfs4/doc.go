// Package nfs4 serves NFSv4.1 (RFC 8881) and NFSv4.0 (RFC 7530) at a mount target, beside NFSv3 on
// the same port (package nfs hands it every call of program 100003 version 4), over the same
// protocol-neutral file system (package fsview): the same handles, confinement, identities, access
// points and read-only destinations as v3.
//
// # What is served
//
// COMPOUND with sessions (EXCHANGE_ID, CREATE_SESSION, SEQUENCE with its slot table and reply cache,
// BIND_CONN_TO_SESSION, DESTROY_SESSION, DESTROY_CLIENTID, RECLAIM_COMPLETE) for 4.1, and
// SETCLIENTID, SETCLIENTID_CONFIRM, RENEW, OPEN_CONFIRM and RELEASE_LOCKOWNER for 4.0; OPEN (by name,
// creating UNCHECKED, GUARDED or EXCLUSIVE; by handle; reclaim) with share reservations, CLOSE,
// OPEN_DOWNGRADE; byte-range LOCK, LOCKT and LOCKU; READ, WRITE (as durable as stable_how asks,
// with a write verifier drawn at every start), COMMIT; LOOKUP, LOOKUPP, READDIR, READLINK,
// GETATTR, SETATTR, ACCESS, CREATE (directories and symbolic links), LINK, REMOVE, RENAME, SECINFO,
// SECINFO_NO_NAME, TEST_STATEID, FREE_STATEID. Not served: delegations (none is ever granted, no
// callback is ever made), pNFS layouts, named attributes, ACLs, RPCSEC_GSS (AUTH_SYS only, as
// NFSv3), and minor version 2. A hard link's handle is found through the name it was first known
// by: once that name is removed, the handle is stale (clients look the file up again).
//
// # NFSv4.0 and libnfs
//
// libnfs 4.0 (Debian's, under fuse-nfs and nfs-cp) uses state in ways RFC 7530 does not allow:
// it creates files with read access and writes through that open, OPENs a file several times
// under one open-owner and CLOSEs each, OPENs directories to change their attributes, locks with
// the seqid of its first OPEN, and, after its first lock, names for another file a lock stateid it
// never got. For minor version 0 only, and only where the strict answer would be an error, the
// server takes these: I/O through an open without that access, or through a stateid it issued
// and a CLOSE ended, is served as stateless I/O (the caller's permissions decide, and another
// open's deny mode still refuses it); a directory OPEN gives a stateid for SETATTR; an older seqid
// of a current stateid is taken; a lock through a closed open gets an open of its own; the
// anonymous stateid as a lock owner's names the lock owner the connection's client last used.
// 4.1 is served strictly. 4.0's open-owner and lock-owner sequence IDs are not checked, and its
// replies are not kept for retransmissions (4.1's sessions do both).
//
// # Paths
//
// The root handle (PUTROOTFH) is the file system's root: "ADDRESS:/" mounts it. At the root, the
// name "fsap-…" of an existing access point leads to that access point's root, with its POSIX user
// ("ADDRESS:/fsap-0123456789abcdef0", as NFSv3's mount path).
//
// # State
//
// Opens and locks belong to clients (client IDs), which keep them by renewing their lease (any
// SEQUENCE in 4.1, RENEW or a stateful call in 4.0). A client silent for longer than the lease
// loses them: they are released at the next call any client makes. Locks are advisory, as POSIX
// locks: they exclude each other (NFS4ERR_DENIED names the holder), not READ or WRITE. State lives
// in memory; after a restart, clients reclaim it during a grace period (OPEN CLAIM_PREVIOUS, LOCK
// with reclaim), in which new opens and locks get NFS4ERR_GRACE. Options.Record keeps, durably, the
// owners of clients holding state: only they may reclaim, the grace period ends as soon as each has
// sent RECLAIM_COMPLETE (4.1) or a new OPEN (4.0), and there is none when no client held state.
//
// # Limits
//
// At most 4096 client IDs (a new one ends the oldest unconfirmed record when they are all taken),
// 16 sessions a client, 16 slots a session, 65536 opens and lock states a client, 4096 lock ranges
// a file (NFS4ERR_DELAY in 4.1, NFS4ERR_RESOURCE in 4.0 beyond), 64 operations a compound.
// Replies are kept for retransmission when the call asks for it or they are at most 1 KiB, up to
// 64 KiB each and 64 MiB in all. A call's record is bounded by package nfs (1 MiB of WRITE data
// and 2 KiB more).
package nfs4
