// Package fsview is the protocol-neutral core of efsd's NFS servers: what a file system's export
// is (its root, access points, policy, read-only state), the export roots a call resolves from,
// who a call acts as (client identities, access points' POSIX users, root squashing) and the
// thread identity switch that makes the kernel check permissions, confined path walks
// (openat2 RESOLVE_BENEATH), and file handles: their authenticated encoding and the persistent
// table that finds a handle's file again after renames and restarts.
//
// The NFSv3 server (package nfs) and the NFSv4 server (package nfs4) are front ends over it, as
// buildbarn's NFSv4 and FUSE servers are over its virtual file system: both issue the same handles
// for the same files, enforce the same rules, and wake replication the same way.
package fsview
