-- Networks: one document per account and region (VPCs, subnets, groups).
CREATE TABLE networks (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (account, region)
);

-- Counters, such as the next loopback block for a default VPC.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE mount_targets (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    id      TEXT NOT NULL,
    fs_id   TEXT NOT NULL,
    ip      TEXT NOT NULL UNIQUE,
    doc     TEXT NOT NULL,
    UNIQUE (account, region, id)
);
CREATE INDEX mount_targets_fs ON mount_targets (account, region, fs_id);

CREATE TABLE access_points (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    account      TEXT NOT NULL,
    region       TEXT NOT NULL,
    id           TEXT NOT NULL,
    fs_id        TEXT NOT NULL,
    client_token TEXT NOT NULL,
    doc          TEXT NOT NULL,
    UNIQUE (account, region, id),
    UNIQUE (account, region, client_token)
);
CREATE INDEX access_points_fs ON access_points (account, region, fs_id);
