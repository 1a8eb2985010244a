-- Which outbox rows a worker took when offered (jobkit.offers): only such a row may be
-- deleted by the sweeper without being published, once the worker has reported on its
-- attempt. Any other step attempt the sweeper finds was never published: the orchestrator
-- records a step's attempt when it dispatches it, so "the step's record has reached that
-- attempt" says nothing about a worker for those, and deleting them lost the dispatch.
ALTER TABLE outbox ADD COLUMN taken boolean NOT NULL DEFAULT false;
