-- The reconciler's READ_BACK finds the journal commands of one entry by its externalId (repairs.py): an index, so
-- a repair does not scan every command the connector ever ran. (The commands table is accord.commands', 1001+.)
CREATE INDEX commands_journal_external_id ON commands ((payload->>'external_id')) WHERE kind = 'post_journal';
