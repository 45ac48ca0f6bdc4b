-- Forge webhooks: deliveries are remembered per project, and a push finds the
-- queued jobs of its branch quickly when it supersedes them.

-- One event may reach two projects that benchmark the same repository, each
-- through its own hook.  Its GitLab X-Gitlab-Event-UUID, or the hash of its
-- body when no id is sent, is then the same for both, and each project must
-- still get its jobs: a delivery is a duplicate only within its project.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey;
ALTER TABLE webhook_deliveries ADD PRIMARY KEY (forge, project_id, delivery_id);

-- A push with the project's supersede_queued setting cancels the queued push
-- jobs of its branch.
CREATE INDEX jobs_branch_queued ON jobs (project_id, branch) WHERE state = 'queued';
