-- A message ref held the whole group key, which can outgrow a btree entry (~2.7 kB): the
-- insert failed and the resolve could not update the message. Refs are a SHA-256 digest
-- now (channels/slack.py message_ref); the rows written before are moved to that form.
UPDATE notifier.slack_messages
SET ref = encode(sha256(convert_to(ref, 'UTF8')), 'hex')
WHERE ref !~ '^[0-9a-f]{64}$';
