-- The fair dispatcher reads a deep ready queue a few rows a group (ready_groups_bounded)
-- and releases a group's oldest rows (release_ready) from one index range each: a
-- group is an owner, a key, a priority and whether its rows are capped starts, so the
-- last is a key column too. Reached through 0012's index, a round read past every
-- capped start to find a key's few later steps, and the release's planner could find a
-- group's rows by the primary key, walking the whole queue to reach a newcomer's.
CREATE INDEX ready_steps_group_v2
    ON ready_steps (owner, concurrency_key, priority, (concurrency_limit IS NOT NULL), id);
DROP INDEX ready_steps_group;
