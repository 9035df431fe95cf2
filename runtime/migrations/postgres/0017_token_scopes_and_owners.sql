-- People and trust (issue 15): a token may be narrowed to scopes (space-separated, such as
-- `runs:trigger pipelines:read`; NULL: every route its role allows), and may belong to a user
-- (it then carries at most that user's present role in its tenant, and stops with the user) or
-- to a named service account.
ALTER TABLE tokens ADD COLUMN scopes TEXT;
ALTER TABLE tokens ADD COLUMN user_id TEXT REFERENCES users(id);
ALTER TABLE tokens ADD COLUMN service_account TEXT;
