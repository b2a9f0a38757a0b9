-- 0006: a job's retry age counts from its first real attempt (not from when it was queued,
-- nor across the time an open circuit breaker held it back).
ALTER TABLE jobs ADD COLUMN first_attempt_at REAL;
