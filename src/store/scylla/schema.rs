//! The keyspace and its versioned migrations (`schemas/cql/*.cql`, compiled in).
//!
//! At start-up the store creates the keyspace when asked to (replication differs per
//! deployment, so it comes from `[store.scylla] replication`, not from a file), then applies in
//! version order every migration that `schema_migrations` does not list, recording each one
//! with its checksum once its statements succeeded and the cluster agrees on the schema. A
//! migration already recorded with another checksum stops start-up: someone edited a released
//! migration, and the cluster's schema is no longer what the files say.
//!
//! Migrations use `IF NOT EXISTS` throughout: two nodes starting together, or a crash between
//! a migration's statements and its record, re-run it harmlessly. DDL runs as plain statements
//! (it takes no values); the bookkeeping reads and writes are prepared like every data access.

use super::{driver_error, ScyllaConfig};
use crate::store::StoreError;
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One migration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub text: &'static str,
}

/// Every migration, in version order. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial.cql",
        text: include_str!("../../../schemas/cql/0001_initial.cql"),
    },
    Migration {
        version: 2,
        name: "0002_records.cql",
        text: include_str!("../../../schemas/cql/0002_records.cql"),
    },
];

/// The bookkeeping table itself (created before anything else, so not a migration).
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version int,
    name text,
    checksum text,
    applied_at timestamp,
    PRIMARY KEY (version)
)";

impl Migration {
    /// CRC-32 of the text with line endings normalised (a checkout with CRLF is the same file).
    pub fn checksum(&self) -> String {
        let normalised = self.text.replace("\r\n", "\n");
        format!("crc32:{:08x}", crc32fast::hash(normalised.as_bytes()))
    }

    /// The statements of the file: `--` comment lines dropped, split at `;` (migrations keep
    /// semicolons out of string literals).
    pub fn statements(&self) -> Vec<String> {
        let mut text = String::new();
        for line in self.text.lines() {
            if !line.trim_start().starts_with("--") {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.split(';')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// `CREATE KEYSPACE IF NOT EXISTS` with `NetworkTopologyStrategy` and the configured
/// replication. Names were validated ([`ScyllaConfig::validate`]): nothing here needs quoting
/// beyond the single quotes around data-centre names.
pub fn create_keyspace_statement(config: &ScyllaConfig) -> String {
    let mut replication = String::from("{'class': 'NetworkTopologyStrategy'");
    for (dc, rf) in &config.replication {
        let _ = write!(replication, ", '{dc}': {rf}");
    }
    replication.push('}');
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {replication} AND durable_writes = true",
        config.keyspace
    )
}

/// What `schema_migrations` says was applied: version → (name, checksum).
pub type Applied = BTreeMap<i32, (String, String)>;

/// The migrations still to apply, or why start-up must stop.
pub fn pending<'a>(
    migrations: &'a [Migration],
    applied: &Applied,
) -> Result<Vec<&'a Migration>, StoreError> {
    let mut todo = Vec::new();
    for m in migrations {
        match applied.get(&m.version) {
            Some((_, checksum)) if *checksum == m.checksum() => {}
            Some((name, checksum)) => {
                return Err(StoreError::Invalid(format!(
                    "CQL migration {} ({}) was applied with checksum {checksum} (as {name}) but \
                     the file now has {}: a released migration was edited; restore it and add a \
                     new migration instead",
                    m.version,
                    m.name,
                    m.checksum()
                )))
            }
            None => todo.push(m),
        }
    }
    Ok(todo)
}

/// Creates the keyspace (when configured to), switches the session to it and applies the
/// pending migrations. Returns the versions applied now.
pub async fn migrate(session: &Session, config: &ScyllaConfig) -> Result<Vec<i32>, StoreError> {
    let ks = &config.keyspace;
    if config.create_keyspace {
        session
            .query_unpaged(create_keyspace_statement(config), ())
            .await
            .map_err(|e| driver_error(&format!("creating keyspace {ks}"), e))?;
        await_agreement(session).await?;
    }
    session
        .use_keyspace(ks.as_str(), false)
        .await
        .map_err(|e| driver_error(&format!("using keyspace {ks}"), e))?;
    session
        .query_unpaged(MIGRATIONS_TABLE, ())
        .await
        .map_err(|e| driver_error("creating schema_migrations", e))?;
    await_agreement(session).await?;

    let mut select = session
        .prepare(format!(
            "SELECT version, name, checksum FROM {ks}.schema_migrations"
        ))
        .await
        .map_err(|e| driver_error("preparing the schema_migrations read", e))?;
    select.set_consistency(config.read_consistency.to_driver());
    let mut insert = session
        .prepare(format!(
            "INSERT INTO {ks}.schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)"
        ))
        .await
        .map_err(|e| driver_error("preparing the schema_migrations write", e))?;
    insert.set_consistency(config.write_consistency.to_driver());
    insert.set_is_idempotent(true);

    let rows = session
        .execute_unpaged(&select, ())
        .await
        .map_err(|e| driver_error("reading schema_migrations", e))?
        .into_rows_result()
        .map_err(|e| StoreError::Corrupt(format!("schema_migrations: {e}")))?;
    let mut applied = Applied::new();
    for row in rows
        .rows::<(i32, String, String)>()
        .map_err(|e| StoreError::Corrupt(format!("schema_migrations: {e}")))?
    {
        let (version, name, checksum) =
            row.map_err(|e| StoreError::Corrupt(format!("schema_migrations: {e}")))?;
        applied.insert(version, (name, checksum));
    }

    let mut done = Vec::new();
    for m in pending(MIGRATIONS, &applied)? {
        for statement in m.statements() {
            session
                .query_unpaged(statement, ())
                .await
                .map_err(|e| driver_error(&format!("applying CQL migration {}", m.name), e))?;
        }
        await_agreement(session).await?;
        let now = CqlTimestamp(cistern_schemas::Timestamp::now().0);
        session
            .execute_unpaged(&insert, (m.version, m.name, m.checksum(), now))
            .await
            .map_err(|e| driver_error(&format!("recording CQL migration {}", m.name), e))?;
        tracing::info!(version = m.version, name = m.name, "applied CQL migration");
        done.push(m.version);
    }
    Ok(done)
}

async fn await_agreement(session: &Session) -> Result<(), StoreError> {
    session
        .await_schema_agreement()
        .await
        .map(|_| ())
        .map_err(|e| {
            StoreError::Unavailable(format!("the cluster does not agree on the schema: {e}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_named_after_their_files() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
            assert!(!m.statements().is_empty());
            for s in m.statements() {
                assert!(!s.contains("--"), "a comment survived in {s}");
            }
        }
    }

    #[test]
    fn the_initial_migration_creates_the_documented_tables() {
        let statements = MIGRATIONS[0].statements();
        for table in [
            "chunks_raw",
            "chunks_1m",
            "chunks_1h",
            "partition_index",
            "state",
            "events",
        ] {
            assert!(
                statements
                    .iter()
                    .any(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS {table} ("))),
                "{table}"
            );
        }
        let raw = statements
            .iter()
            .find(|s| s.contains("chunks_raw"))
            .map(String::as_str)
            .unwrap_or_default();
        assert!(raw.contains("TimeWindowCompactionStrategy"));
    }

    #[test]
    fn the_records_migration_creates_the_records_and_their_index() {
        let statements = MIGRATIONS[1].statements();
        for table in ["records", "record_index"] {
            assert!(
                statements
                    .iter()
                    .any(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS {table} ("))),
                "{table}"
            );
        }
    }

    #[test]
    fn the_checksum_ignores_line_endings_but_not_content() {
        let m = MIGRATIONS[0];
        let crlf: &'static str = Box::leak(m.text.replace('\n', "\r\n").into_boxed_str());
        let edited: &'static str = Box::leak(format!("{} ", m.text).into_boxed_str());
        assert_eq!(Migration { text: crlf, ..m }.checksum(), m.checksum());
        assert_ne!(Migration { text: edited, ..m }.checksum(), m.checksum());
    }

    #[test]
    fn an_edited_applied_migration_stops_start_up_and_applied_ones_are_skipped() {
        let mut applied = Applied::new();
        assert_eq!(
            pending(MIGRATIONS, &applied).unwrap().len(),
            MIGRATIONS.len()
        );
        applied.insert(1, (MIGRATIONS[0].name.into(), MIGRATIONS[0].checksum()));
        assert_eq!(
            pending(MIGRATIONS, &applied).unwrap().len(),
            MIGRATIONS.len() - 1
        );
        applied.insert(1, (MIGRATIONS[0].name.into(), "crc32:00000000".into()));
        let err = pending(MIGRATIONS, &applied).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("0001_initial.cql"), "{err}");
    }

    #[test]
    fn the_keyspace_is_created_with_per_dc_replication() {
        let mut config = ScyllaConfig {
            keyspace: "cistern".into(),
            ..ScyllaConfig::default()
        };
        config.replication.insert("dc1".into(), 3);
        config.replication.insert("dc2".into(), 3);
        assert_eq!(
            create_keyspace_statement(&config),
            "CREATE KEYSPACE IF NOT EXISTS cistern WITH replication = {'class': \
             'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3} AND durable_writes = true"
        );
    }
}
