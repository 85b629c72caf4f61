-- Replication configurations: one row serves both sides.
CREATE TABLE replications (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    src_account TEXT    NOT NULL,
    src_region  TEXT    NOT NULL,
    src_id      TEXT    NOT NULL,
    src_hidden  INTEGER NOT NULL DEFAULT 0,
    dst_account TEXT    NOT NULL,
    dst_region  TEXT    NOT NULL,
    dst_id      TEXT    NOT NULL,
    dst_hidden  INTEGER NOT NULL DEFAULT 0,
    doc         TEXT    NOT NULL,
    UNIQUE (src_account, src_region, src_id),
    UNIQUE (dst_account, dst_region, dst_id)
);
CREATE INDEX replications_src_id ON replications (src_id);
CREATE INDEX replications_dst_id ON replications (dst_id);
