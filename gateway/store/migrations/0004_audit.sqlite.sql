-- 0004: the tamper-evident audit trail. Each record is chained to the one before by SM3
-- (HMAC-SM3 when an audit key is configured): changing, deleting or reordering any record
-- breaks the chain from there on, which `gateway audit verify` reports.

CREATE TABLE IF NOT EXISTS audit_log (
    seq            INTEGER PRIMARY KEY,           -- 1, 2, 3…: a gap is a deleted record
    at             REAL NOT NULL,
    actor          TEXT NOT NULL,            -- platform app key, department, operator, gateway
    event          TEXT NOT NULL,            -- inbound_request, application_accepted, department_call, …
    outcome        TEXT NOT NULL,
    application_no TEXT NOT NULL DEFAULT '', -- the platform's case number (no personal data)
    delivery_id    TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT '{}', -- route, status, department, operation: never personal data
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_application ON audit_log(application_no);
