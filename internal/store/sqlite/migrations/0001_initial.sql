-- File systems: the columns hold what queries select on; doc holds the
-- whole record as JSON.
CREATE TABLE file_systems (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    account        TEXT    NOT NULL,
    region         TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    creation_token TEXT    NOT NULL,
    due_at         INTEGER,            -- unix nanoseconds; NULL when nothing is pending
    doc            TEXT    NOT NULL,
    UNIQUE (account, region, id),
    UNIQUE (account, region, creation_token)
);
CREATE INDEX file_systems_due ON file_systems (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE account_preferences (
    account          TEXT NOT NULL,
    region           TEXT NOT NULL,
    resource_id_type TEXT NOT NULL,
    PRIMARY KEY (account, region)
);
