-- 0005: the platform request that created the application: its id travels with every
-- department call and log line made for the application afterwards (X-Request-Id).
ALTER TABLE applications ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
