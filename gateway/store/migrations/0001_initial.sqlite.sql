-- The gateway's durable state (sqlite). One transaction writes an application, its items and its
-- outbox jobs: a 202 is only ever sent after that commit.

CREATE TABLE IF NOT EXISTS applications (
    application_no  TEXT PRIMARY KEY,          -- the platform's case number: unique forever
    fingerprint     TEXT NOT NULL,             -- sha256 of the canonical request JSON
    initiating_item TEXT NOT NULL,
    status          TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    response_json   TEXT NOT NULL,             -- the 202 body, replayed to a resubmission
    callback_url    TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS items (
    application_no TEXT NOT NULL REFERENCES applications(application_no),
    item           TEXT NOT NULL,
    department     TEXT NOT NULL,
    mode           TEXT NOT NULL,
    position       INTEGER NOT NULL,
    after_initiating INTEGER NOT NULL DEFAULT 0, -- sent only once the initiating item is approved
    status         TEXT NOT NULL,
    reason_code    TEXT NOT NULL DEFAULT '',
    message        TEXT NOT NULL DEFAULT '',
    delivery_id    TEXT,                      -- stable per (application, item), every attempt
    document       TEXT,                      -- e.g. the approval number the initiating item produced
    raw_result     TEXT,                      -- the department's own answer, kept for audit
    updated_at     REAL NOT NULL,
    PRIMARY KEY (application_no, item)
);
CREATE UNIQUE INDEX IF NOT EXISTS items_delivery ON items(delivery_id) WHERE delivery_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    application_no TEXT NOT NULL,
    item           TEXT NOT NULL,             -- '' for application-level jobs (notify)
    kind           TEXT NOT NULL,             -- submit | poll | notify
    department     TEXT NOT NULL,             -- '' for notify
    state          TEXT NOT NULL,             -- waiting | pending | done | dead | cancelled
    attempts       INTEGER NOT NULL DEFAULT 0,
    not_before     REAL NOT NULL,
    lease_owner    TEXT,
    lease_until    REAL,
    last_error     TEXT,
    created_at     REAL NOT NULL
);
-- One submission job per item, ever: a resubmission cannot queue a second one.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_submit ON jobs(application_no, item) WHERE kind = 'submit';
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, not_before);

CREATE TABLE IF NOT EXISTS job_attempts (
    job_id  INTEGER NOT NULL,
    at      REAL NOT NULL,
    outcome TEXT NOT NULL,
    error   TEXT
);

CREATE TABLE IF NOT EXISTS dead_letters (
    job_id         INTEGER PRIMARY KEY,
    application_no TEXT NOT NULL,
    item           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    department     TEXT NOT NULL,
    last_error     TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    created_at     REAL NOT NULL,
    replayed_at    REAL
);

-- Inbound Idempotency-Key records (IETF httpapi draft): kept for a configured period.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT PRIMARY KEY,
    fingerprint    TEXT NOT NULL,
    state          TEXT NOT NULL,             -- processing | done
    status         INTEGER,
    response_json  TEXT,
    created_at     REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
);

-- Request nonces seen within the signature window (replay protection across replicas).
CREATE TABLE IF NOT EXISTS nonces (
    nonce   TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_seen ON nonces(seen_at);
