//! The state database's schema and its migrations, applied in order inside one transaction.

/// Migrations by version; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: cursor, files seen, fingerprint ledger, outbox, dead letters, runs.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE cursor (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        modified_ms INTEGER NOT NULL,
        key         TEXT NOT NULL
    );
    CREATE TABLE files (
        source      TEXT NOT NULL,
        path        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        etag        TEXT,
        modified_ms INTEGER NOT NULL,
        rows        INTEGER NOT NULL,
        read_at     TEXT NOT NULL,
        PRIMARY KEY (source, path)
    );
    CREATE TABLE ledger (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        version     INTEGER NOT NULL,
        modified_ms INTEGER,
        acked_at    TEXT NOT NULL
    );
    CREATE TABLE outbox (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        key         TEXT NOT NULL,
        version     INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        modified_ms INTEGER,
        record      TEXT NOT NULL,
        reason      TEXT NOT NULL,
        batch_id    TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        queued_at   TEXT NOT NULL
    );
    CREATE INDEX outbox_key ON outbox (key);
    CREATE INDEX outbox_batch ON outbox (batch_id);
    CREATE TABLE dead_letters (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        key         TEXT NOT NULL,
        version     INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        modified_ms INTEGER,
        record      TEXT NOT NULL,
        status      INTEGER,
        reason      TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    CREATE INDEX dead_letters_key ON dead_letters (key);
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        summary     TEXT NOT NULL
    );
    "#,
    // 2: orders held while their lines are awaited; the file each order was
    // last read from, so lines that arrive later can re-queue it.
    r#"
    ALTER TABLE outbox ADD COLUMN hold_until_ms INTEGER;
    CREATE TABLE order_files (
        key         TEXT PRIMARY KEY,
        path        TEXT NOT NULL,
        modified_ms INTEGER
    );
    "#,
    // 3: what a baseline `import flag` read of the orders it did not flag:
    // content the CRM is taken to have, never sent by this tool. Offered
    // again unchanged (its file rewritten, or read again), such an order is
    // not sent; changed, it is.
    r#"
    CREATE TABLE baseline (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        modified_ms INTEGER
    );
    "#,
];
