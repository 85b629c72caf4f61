-- NFS file handles: a handle names a file by (file system, inode); this
-- table maps it to the file's current path so handles survive restarts.
CREATE TABLE nfs_handles (
    fs   TEXT    NOT NULL,
    ino  INTEGER NOT NULL,
    path TEXT    NOT NULL,
    PRIMARY KEY (fs, ino)
);
