-- 0002: what the dispatcher needs to keep its promises across crashes and replicas.

-- The last attempt may have reached the department (sent, then no answer): the next attempt
-- asks the department's status first where it can, and re-sends with the same delivery id.
ALTER TABLE jobs ADD COLUMN unknown_outcome INTEGER NOT NULL DEFAULT 0;

-- Platform notifications: one job per application, re-armed whenever the state moves on;
-- each POST carries the version it reports so the platform can ignore an older one.
ALTER TABLE applications ADD COLUMN notify_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE applications ADD COLUMN notified_version INTEGER NOT NULL DEFAULT 0;
DELETE FROM jobs WHERE kind = 'notify'
    AND id NOT IN (SELECT MAX(id) FROM jobs WHERE kind = 'notify' GROUP BY application_no);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_notify ON jobs(application_no) WHERE kind = 'notify';

-- At most one open status poll per item (a crash between scheduling and finishing cannot make two).
-- Stores written before this version may hold such duplicates: keep the oldest of each.
DELETE FROM jobs WHERE kind = 'poll' AND state = 'pending'
    AND id NOT IN (SELECT MIN(id) FROM jobs WHERE kind = 'poll' AND state = 'pending' GROUP BY application_no, item);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_open_poll ON jobs(application_no, item)
    WHERE kind = 'poll' AND state = 'pending';

-- How a dead letter ended: 'replayed' by an operator, or 'department_result' when the
-- department's own answer arrived after all.
ALTER TABLE dead_letters ADD COLUMN resolution TEXT;
