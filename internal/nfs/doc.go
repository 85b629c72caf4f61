// Package nfs is efsd's data plane: it serves a file system's directory over NFSv3 (TCP only), with
// the MOUNT protocol on the same port, so that the file system is reachable at its mount targets.
// What is not NFSv3's own (exports, access-point roots, identities, confinement, handles) is
// package fsview's, shared with the NFSv4 server.
//
// # Mounting
//
// There is no portmapper: give the client the port for both NFS and MOUNT (one port serves both),
// and disable NLM locking (efsd has no NLM lock manager; NFSv3 locks stay local to each client;
// NFSv4 clients get the server's locks).
//
// Linux (kernel client; not exercised by the tests, which use go-nfs-client and libnfs):
//
//	mount -t nfs -o nfsvers=3,proto=tcp,port=PORT,mountport=PORT,mountproto=tcp,nolock IP:/ /mnt/x
//	mount -t nfs -o nfsvers=3,proto=tcp,port=PORT,mountport=PORT,mountproto=tcp,nolock IP:/fsap-0123456789abcdef0 /mnt/x
//
// macOS (not exercised by the tests):
//
//	mount -t nfs -o vers=3,tcp,port=PORT,mountport=PORT,nolocks,resvport IP:/ /mnt/x
//
// libnfs (nfs-ls, nfs-cp, nfs-cat of Debian's libnfs-utils 4.0) takes the ports in the URL. A file
// URL's directory part is what libnfs mounts, so a file at the root is written with "//":
//
//	nfs-ls  "nfs://IP/?version=3&nfsport=PORT&mountport=PORT"
//	nfs-ls  "nfs://IP/dir?version=3&nfsport=PORT&mountport=PORT"
//	nfs-cp  ./local "nfs://IP//file?version=3&nfsport=PORT&mountport=PORT"
//	nfs-cp  "nfs://IP/dir/file?version=3&nfsport=PORT&mountport=PORT" ./local
//	nfs-cat "nfs://IP//file?version=3&nfsport=PORT&mountport=PORT"
//	nfs-ls  "nfs://IP/fsap-0123456789abcdef0?version=3&nfsport=PORT&mountport=PORT"
//
// libnfs sends the calling process's uid and gid unless the URL says "&uid=1000&gid=1000".
//
// Mount paths: "/" is the file system's root; "/fsap-…" (or "fsap-…") an access point's root;
// "/fsap-…/a/b" a directory below an access point's root; "/a/b" a directory of the file system.
// Unknown access points and missing directories are MNT3ERR_NOENT. An access point whose root
// directory is missing gets it created, as its CreationInfo says, at the first mount, unless the
// export is read-only (a replication destination): that mount fails with MNT3ERR_NOENT and creates
// nothing.
//
// # Identities and permissions
//
// go-nfs hands its handler no per-RPC context, but serves each connection strictly sequentially;
// the Server wraps each connection, parses every RPC call header as it arrives, and so knows the
// AUTH_UNIX credentials (uid, gid, up to 16 groups) of the call being served. Each file system
// operation is performed with the serving thread's file-system UID/GID and groups switched to the
// identity the call acts as, so the kernel itself enforces permissions and assigns ownership:
//
//   - Plain mounts act as the client's AUTH_UNIX identity (root is root, as EFS without a file system
//     policy; Export.Access withholding Root squashes uid 0 and gid 0 to 65534, as knfsd's
//     root_squash); calls without AUTH_UNIX act as fsview.Nobody (65534:65534).
//   - Access points with a POSIX user act as that user (UID, GID, secondary GIDs) whatever the
//     client sends; without one, as the client's identity.
//
// efsd must run as root for this (it is then logged as a warning and every operation acts as
// efsd's own user).
//
// # Confinement
//
// Every path is resolved with openat2(RESOLVE_BENEATH) from the export's root directory: "..",
// absolute or relative symlinks and concurrent renames cannot lead outside it. The server never
// follows a symlink's last component except to test whether it names a directory (and then only
// inside the export); READLINK returns the target text as stored, for the client to interpret. Only
// regular files are opened for READ and WRITE. A handle of an access point's mount names the access
// point (under the handle's MAC); a file moved out of its root is stale through it. A connection that
// has mounted is bound to what it mounted: after MOUNT of an access point (or of a directory below
// one) a handle of the file system root or of another access point is stale on that connection, and
// after MOUNT of "/" (or of a directory of the file system) an access point's handle is; a
// connection that mounted several exports may use the handles of each. Clients that mount over one
// connection and call NFS over another (the Linux and macOS kernels) are confined by the MAC alone.
// A subdirectory mount is not confined to its directory, as on EFS: ".." leads up to its export's
// root (the file system's, or the access point's).
//
// # Handles
//
// A file handle (at most 64 bytes) carries the inode number, the inode's birth time (statx btime:
// tells a reused inode number apart), the access point ID, and a MAC (HMAC-SHA256, 128 bits) over
// all of them and the file system ID, keyed with a secret of the data directory (LoadHandleKey). A
// client can therefore only use handles the server issued, for the file system and access point it
// issued them for: a changed byte, a handle of another file system or account, or one made up
// answers NFS3ERR_STALE (logged once per connection), before any file is looked at. The
// HandleStore maps (file system, inode) to "parent inode/name"; the path is found by following
// parents up to the export root, then checked (the inode and birth time must match). A rename
// updates one entry, even for a directory with a large subtree; handles survive restarts. A file
// renamed or replaced behind efsd's back (on the host, or by replication on a destination) has a
// stale handle; clients look it up again. Handles of efsd versions before the MAC are stale, as are
// all handles if the data directory's key file is lost or replaced: clients mount again.
//
// # Durability and notifications
//
// A WRITE is made as durable as its stable_how asks before it is answered, and its reply says so:
// FILE_SYNC is fsynced, DATA_SYNC fdatasynced, and UNSTABLE (what Linux clients send, then COMMIT)
// is answered from the page cache; COMMIT fsyncs the file. The write verifier of WRITE and COMMIT
// replies is drawn at random when the server starts, so a client whose UNSTABLE data a crash may
// have lost sees another verifier and sends it again (RFC 1813 3.3.7, 3.3.21). Namespace changes (create, mkdir, symlink, remove, rename) fsync the
// directories involved, attribute changes the object, before the reply. Export.OnChange is called
// after every successful modification. A read-only export (Export.ReadOnly), or one whose
// Export.Access withholds Write, answers every modifying call with NFS3ERR_ROFS. Export.Access
// withholding Mount refuses MOUNT (MNT3ERR_ACCES) and every call of clients already mounted.
//
// # Protocol details
//
// go-nfs v0.0.4 is used as is (not forked). The connection layer answers what it cannot: other RPC programs
// (PROG_UNAVAIL), other versions of NFS and MOUNT (PROG_MISMATCH 3-3, or 3-4 for NFS when a V4
// serves NFSv4 on the same port: Server.SetV4), MOUNT DUMP, UMNTALL and EXPORT (empty lists; libnfs
// asks EXPORT at every mount). NFSv4 calls go, whole, to the V4.
// File handles are a multiple of 4 bytes long (go-nfs reads some handles ignoring XDR padding).
// Directory listings are cached by cookie verifier for a minute, so that paging through a large
// directory reads it once.
//
// # Not supported
//
// NLM locks (NFSv4 locks are package nfs4's), the portmapper, UDP, hard links (LINK) and MKNOD (go-nfs v0.0.4 misparses LINK
// and issues MKNOD's handle before the node exists: both answer NFS3ERR_ACCES), exclusive CREATE
// (NFS3ERR_NOTSUPP; Linux clients fall back to a guarded create). ctime and atime are reported equal
// to mtime (go-nfs's choice).
//
// # Hostile clients
//
// Every byte from a socket is checked before go-nfs, which allocates whatever a length claims before
// reading, decodes it: a record may be at most a 1 MiB WRITE (maxRecord), every other call at most
// 8 KiB, every opaque and string must lie within its record, a handle at most 64 bytes. A call that
// breaks this is answered GARBAGE_ARGS, an oversized or malformed record closes the connection.
// FSINFO advertises 1 MiB transfers, and larger READ and READDIR counts are cut to it. A connection
// serves one call at a time, and is closed when idle (ConnLimits.IdleTimeout) or when a record or a
// reply stalls (RecordTimeout); caps bound the connections per listener and per client address,
// and the calls moving more than 64 KiB served at once (MaxLargeCalls).
// go-nfs's catch-all error statuses are corrected from the errno as replies go out.
package nfs
