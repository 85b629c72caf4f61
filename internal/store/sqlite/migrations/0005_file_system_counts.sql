-- How many file systems each account has in each region, kept by triggers:
-- the quota check of every create reads one row instead of counting an
-- index that grows to the quota.
CREATE TABLE file_system_counts (
    account TEXT    NOT NULL,
    region  TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (account, region)
);
INSERT INTO file_system_counts (account, region, n)
    SELECT account, region, count(*) FROM file_systems GROUP BY account, region;
CREATE TRIGGER file_systems_counted AFTER INSERT ON file_systems BEGIN
    INSERT INTO file_system_counts (account, region, n) VALUES (NEW.account, NEW.region, 1)
        ON CONFLICT (account, region) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER file_systems_uncounted AFTER DELETE ON file_systems BEGIN
    UPDATE file_system_counts SET n = n - 1 WHERE account = OLD.account AND region = OLD.region;
END;
