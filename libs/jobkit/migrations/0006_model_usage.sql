-- Model tokens used by each step attempt, and their cost by the price table in force when
-- the result was committed. Kept apart from the jobs so a per-user token budget still
-- counts usage after a job is deleted; pruned by age (orchestrator retention).
CREATE TABLE model_usage (
    id                bigserial        PRIMARY KEY,
    owner             text             NOT NULL,
    job_id            uuid             NOT NULL,
    job_type          text             NOT NULL,
    step              text             NOT NULL,
    attempt           integer          NOT NULL,
    model             text             NOT NULL,
    prompt_tokens     bigint           NOT NULL,
    completion_tokens bigint           NOT NULL,
    cost_usd          double precision NOT NULL,
    recorded_at       timestamptz      NOT NULL DEFAULT now(),
    -- A result is committed once per attempt; a re-delivered one is ignored upstream,
    -- and this makes sure of it.
    UNIQUE (job_id, step, attempt, model)
);

CREATE INDEX model_usage_job ON model_usage (job_id);
CREATE INDEX model_usage_owner_recent ON model_usage (owner, recorded_at);
