-- Recipients are directory organisations (issue "The boundary holds (II)"). The data
-- authority records where each organisation is (mainland, Hong Kong, Macao, Taiwan, abroad);
-- an organisation with none recorded is treated as outside the mainland until it is. A
-- release names its recipient by the organisation's id (or the public), and its cross-border
-- flag is derived from that record, never taken from the requester; products reach their
-- recipient by organisation id, not by a name.

ALTER TABLE orgs ADD COLUMN jurisdiction TEXT;
ALTER TABLE releases ADD COLUMN recipient_org_id TEXT;
