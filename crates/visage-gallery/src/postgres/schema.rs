//! The PostgreSQL schema and its migrations.
//!
//! Versions are numbered; `visage_schema_version` records each one applied.
//! Creating or opening a gallery applies the missing ones in one
//! transaction, under an advisory lock so two processes opening the same
//! database at once do not both migrate. A database at a newer version than
//! this build knows is refused (an older visage must not write to it).
//!
//! Tables (`E` = the gallery's embedding size, fixed at creation):
//!
//! - `visage_config(id = 1, config jsonb)`: the [`GalleryConfig`](crate::GalleryConfig) as JSON
//!   (embedding size, recogniser, quality policy, threshold with its origin);
//! - `visage_identities(id, name unique, metadata jsonb, pooled vector(E))`:
//!   ids from an identity column (never reused, so also the enrolment
//!   order), `pooled` = [`pool_templates`](crate::model::pool_templates) of
//!   the identity's templates, recomputed in the transaction that changes them;
//! - `visage_templates(id, identity_id → identities on delete cascade,
//!   embedding vector(E), magnitude real, source text)`: one row per face,
//!   in enrolment order by `id`, as the embedded store keeps them;
//! - `visage_idempotency(key primary key, fingerprint, identity_id,
//!   created, accepted, seq)` (version 2): what a keyed enrolment did,
//!   written in its transaction, so a retry with the same key returns it;
//!   the newest [`IDEMPOTENCY_KEYS_KEPT`] keys are kept (by `seq`);
//! - an HNSW index on `pooled` (`vector_cosine_ops`, pgvector's defaults
//!   m = 16, ef_construction = 64) for approximate search. Exact search
//!   orders by `<#>`, which this index cannot serve: see `super`.

/// The newest schema version this build writes.
pub const SCHEMA_VERSION: i32 = 2;

/// Idempotency keys remembered (the embedded store keeps as many).
pub const IDEMPOTENCY_KEYS_KEPT: i64 = 10_000;

/// Key of the advisory lock that serialises migrations (any fixed number).
pub const MIGRATION_LOCK: i64 = 0x7669_7361_6765; // "visage"

/// Name of the approximate-search index (dropped and rebuilt around bulk loads).
pub const SEARCH_INDEX: &str = "visage_identities_pooled_hnsw";

/// The statements of migration `version` for embedding size `dim`.
pub fn migration(version: i32, dim: usize) -> Option<String> {
    match version {
        1 => Some(format!(
            "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE visage_config (
                 id smallint PRIMARY KEY CHECK (id = 1),
                 config jsonb NOT NULL
             );
             CREATE TABLE visage_identities (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 name text NOT NULL UNIQUE,
                 metadata jsonb NOT NULL DEFAULT 'null',
                 pooled vector({dim}) NOT NULL
             );
             CREATE TABLE visage_templates (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 identity_id bigint NOT NULL REFERENCES visage_identities (id) ON DELETE CASCADE,
                 embedding vector({dim}) NOT NULL,
                 magnitude real NOT NULL,
                 source text NOT NULL
             );
             CREATE INDEX visage_templates_identity ON visage_templates (identity_id, id);
             {}",
            create_search_index()
        )),
        // No foreign key to the identity: the record outlives a removal
        // (a retry then learns the identity is gone, not that it is new).
        2 => Some(
            "CREATE TABLE visage_idempotency (
                 key text PRIMARY KEY,
                 fingerprint bigint NOT NULL,
                 identity_id bigint NOT NULL,
                 created boolean NOT NULL,
                 accepted integer NOT NULL,
                 seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE
             );"
            .to_string(),
        ),
        _ => None,
    }
}

/// The HNSW index over the pooled templates (cosine distance).
pub fn create_search_index() -> String {
    format!("CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON visage_identities USING hnsw (pooled vector_cosine_ops);")
}

/// Creates the version table (when missing).
pub const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS visage_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())";
