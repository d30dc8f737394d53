-- The boundary holds (issue 19). A job output now records what the output algebra admitted
-- (its shape, its keys by lineage) and where its members are — which entities, with which
-- rows, are behind each cell: the disclosure ledger compares releases by them. A job that fails
-- on full data keeps the engine's own explanation only encrypted (under the master key), for the
-- operator's security staff; the developer sees a fixed code. A release keeps the evidence of
-- the copy it released, so a download is judged again by the gate's own checks.

ALTER TABLE job_outputs ADD COLUMN algebra_json TEXT;
ALTER TABLE job_outputs ADD COLUMN members_path TEXT;
ALTER TABLE job_outputs ADD COLUMN members_wrapped_key TEXT;
ALTER TABLE jobs ADD COLUMN diagnostics_wrapped TEXT;
ALTER TABLE releases ADD COLUMN evidence_json TEXT;
