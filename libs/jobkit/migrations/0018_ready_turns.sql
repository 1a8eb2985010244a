-- The fair dispatcher reads a wide ready queue (thousands of owners with a few attempts
-- each) by its owners next in turn (ready_groups_in_turn): the next few owners after the
-- last served, in each lane, urgent (priority 9) or not. Owners take turns in the order
-- Python sorts them (services/orchestrator/fairness.py), which is the "C" collation's:
-- byte order, which for UTF-8 is code point order. The lane leads the index, so each
-- lane's owners are one range of it, and finding none urgent is one probe.
DROP INDEX ready_steps_group_v2;  -- first: the ALTER would rebuild it
ALTER TABLE ready_steps ALTER COLUMN owner TYPE text COLLATE "C";
CREATE INDEX ready_steps_turns
    ON ready_steps ((priority >= 9), owner, concurrency_key, priority,
                    (concurrency_limit IS NOT NULL), id);
