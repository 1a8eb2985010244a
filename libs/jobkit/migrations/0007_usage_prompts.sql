-- The prompts (id@version, space-separated) an attempt sent to each model: which prompt
-- wording a result came from, for reproducing it.
ALTER TABLE model_usage ADD COLUMN prompts text NOT NULL DEFAULT '';
