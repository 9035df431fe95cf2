-- Alerts (issue 17): each channel takes at most this many sends an hour; the deliveries over
-- it wait (pending, with the reason) for the window to move, never dropped.
ALTER TABLE channels ADD COLUMN max_per_hour BIGINT NOT NULL DEFAULT 100;
