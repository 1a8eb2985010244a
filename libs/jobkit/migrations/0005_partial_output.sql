-- Text a step has written so far (a model streaming its answer), carried by its PROGRESS
-- events so that WatchJob shows it being written and a reconnecting client replays it.
ALTER TABLE job_events ADD COLUMN partial_output text NOT NULL DEFAULT '';
