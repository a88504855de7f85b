-- V5: batches. A batch and the state of each of its documents live here, so any number of
-- worker processes, on any machines that reach the database, share one batch without a
-- coordinator: a worker takes the next document with FOR UPDATE SKIP LOCKED and holds it
-- under a lease; a document whose worker died is taken over when its lease has expired.
-- Batch bookkeeping is written by the admin role (it is not knowledge-base content).

CREATE TABLE cutter_governance.batch (
    batch_id        text PRIMARY KEY CHECK (batch_id <> ''),
    manifest_sha256 text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE cutter_governance.batch_item (
    batch_id    text NOT NULL REFERENCES cutter_governance.batch (batch_id),
    position    integer NOT NULL,
    document_id text NOT NULL,
    source_path text NOT NULL,
    profile     text,
    sha256      text,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'taken', 'paused', 'closed', 'stopped')),
    run_id      text,
    worker      text,
    lease_until timestamptz,
    detail      text,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (batch_id, document_id),
    UNIQUE (batch_id, position)
);
