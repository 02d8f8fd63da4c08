//! The schema holds to the Citus plan in `deploy/SCALING.md`: tenant tables are
//! distributed by `tenant_id`, the group tables keyed by `group_id`, and the registry
//! tables are reference tables or stay on the coordinator. Citus only accepts a primary
//! key, unique index or exclusion constraint on a distributed table when it contains
//! the distribution column, and a foreign key only between co-located tables on that
//! column or towards a reference table. The plan asks more: the distribution column
//! comes first (so every key is also the tenant's own index), and it is NOT NULL.
//!
//! Every table of schema `public` is classified below or is a tenant table; a new
//! table that is neither, or a listed table that is gone, fails the test, so this list
//! and SCALING.md's table-by-table classification stay in step.

use assent_store::DbConnection;
use assent_tests::TestDb;
use diesel::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Nullable, Text};

/// Where a table lives under Citus (SCALING.md, "Table by table").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Hash-distributed by `tenant_id`, all in one co-location group.
    ByTenant,
    /// Hash-distributed by `group_id`, in a co-location group of their own.
    ByGroup,
    /// `create_reference_table`: one shard, a copy on every node.
    Reference,
    /// Stays on the coordinator (a plain or Citus-local table).
    Coordinator,
}

/// Installation-level tables, exempt from the tenant rule: they are looked up before
/// the tenant is known, or belong to no tenant.
const REGISTRY: &[(&str, Placement, &str)] = &[
    (
        "tenant_groups",
        Placement::Reference,
        "the groups of affiliated companies; group tables and tenants refer to it",
    ),
    (
        "tenants",
        Placement::Reference,
        "the tenant registry; every tenant table's foreign key refers to it",
    ),
    (
        "api_key_directory",
        Placement::Coordinator,
        "maps a client id to its tenant before the token endpoint knows the tenant",
    ),
    (
        "telegram_link_tokens",
        Placement::Coordinator,
        "the bot resolves a start token before it knows the tenant",
    ),
    (
        "telegram_chat_directory",
        Placement::Coordinator,
        "the bot's index from a chat to the tenants' subjects it is linked to",
    ),
    (
        "telegram_chat_state",
        Placement::Coordinator,
        "a chat's language and menu; belongs to no tenant",
    ),
    (
        "telegram_updates",
        Placement::Coordinator,
        "Telegram update ids already handled; belongs to no tenant",
    ),
    (
        "telegram_send_slots",
        Placement::Coordinator,
        "the bot's shared Telegram send limits; Telegram limits the bot, not a tenant",
    ),
    (
        "calendar_years",
        Placement::Reference,
        "imported production calendars: written once a year, read by every deadline",
    ),
    (
        "job_schedule",
        Placement::Coordinator,
        "when each periodic job is next due, installation-wide",
    ),
    (
        "__diesel_schema_migrations",
        Placement::Coordinator,
        "diesel's record of the migrations applied (run on the coordinator)",
    ),
];

/// Group-owned tables: keyed by `group_id`, shared by the affiliates of a group.
const GROUP_TABLES: &[(&str, Placement, &str)] = &[
    (
        "group_purposes",
        Placement::Reference,
        "group purpose definitions: rarely written, joined by every consent check",
    ),
    (
        "group_purpose_codes",
        Placement::Reference,
        "codes taken in a group: written only when a purpose is created",
    ),
    (
        "group_consent_states",
        Placement::ByGroup,
        "per person and purpose, written by every group-purpose event",
    ),
    (
        "group_identities",
        Placement::ByGroup,
        "per person of a group, written as subjects are created",
    ),
];

#[derive(QueryableByName, Debug)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    /// NULL: no such column; otherwise whether it is NOT NULL.
    #[diesel(sql_type = Nullable<diesel::sql_types::Bool>)]
    tenant_id_not_null: Option<bool>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Bool>)]
    group_id_not_null: Option<bool>,
}

#[derive(QueryableByName, Debug)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    key_name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
}

#[derive(QueryableByName, Debug)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    key_name: String,
    #[diesel(sql_type = Text)]
    referenced: String,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    referenced_columns: Vec<String>,
}

const TABLES: &str = "\
    SELECT c.relname::text AS table_name, \
           (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid \
              AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS tenant_id_not_null, \
           (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid \
              AND a.attname = 'group_id' AND NOT a.attisdropped) AS group_id_not_null \
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
     ORDER BY 1";

/// Primary keys, unique constraints, unique indexes (partial ones too) and exclusion
/// constraints, with their key columns in order (INCLUDE columns left out; an
/// expression shows as `(expression)`).
const KEYS: &str = "\
    SELECT c.relname::text AS table_name, \
           COALESCE(con.conname, ic.relname)::text AS key_name, \
           CASE WHEN ix.indisprimary THEN 'primary key' \
                WHEN con.contype = 'u' THEN 'unique constraint' \
                WHEN con.contype = 'x' THEN 'exclusion constraint' \
                ELSE 'unique index' END AS kind, \
           ARRAY(SELECT COALESCE(a.attname::text, '(expression)') \
                   FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                   LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum \
                  WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord) AS columns \
      FROM pg_index ix \
      JOIN pg_class c ON c.oid = ix.indrelid \
      JOIN pg_class ic ON ic.oid = ix.indexrelid \
      JOIN pg_namespace n ON n.oid = c.relnamespace \
      LEFT JOIN pg_constraint con ON con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid \
                                  AND con.contype IN ('p', 'u', 'x') \
     WHERE n.nspname = 'public' AND (ix.indisunique OR con.contype = 'x') \
     ORDER BY 1, 2";

const FOREIGN_KEYS: &str = "\
    SELECT c.relname::text AS table_name, con.conname::text AS key_name, \
           r.relname::text AS referenced, \
           ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) \
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
                  ORDER BY k.ord) AS columns, \
           ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord) \
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum \
                  ORDER BY k.ord) AS referenced_columns \
      FROM pg_constraint con \
      JOIN pg_class c ON c.oid = con.conrelid \
      JOIN pg_class r ON r.oid = con.confrelid \
      JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE con.contype = 'f' AND n.nspname = 'public' \
     ORDER BY 1, 2";

fn listed(name: &str) -> Option<(Placement, &'static str)> {
    REGISTRY
        .iter()
        .chain(GROUP_TABLES)
        .find(|(table, _, _)| *table == name)
        .map(|(_, placement, why)| (*placement, *why))
}

/// The distribution column of a distributed placement.
fn distribution_column(placement: Placement) -> Option<&'static str> {
    match placement {
        Placement::ByTenant => Some("tenant_id"),
        Placement::ByGroup => Some("group_id"),
        Placement::Reference | Placement::Coordinator => None,
    }
}

/// Everything in the connected database's schema that the plan does not allow, one
/// line each, naming the table and the constraint.
fn violations(pg: &mut PgConnection) -> Vec<String> {
    let tables: Vec<TableRow> = diesel::sql_query(TABLES).load(pg).expect("read the tables");
    let keys: Vec<KeyRow> = diesel::sql_query(KEYS).load(pg).expect("read the keys");
    let foreign: Vec<ForeignKeyRow> = diesel::sql_query(FOREIGN_KEYS)
        .load(pg)
        .expect("read the foreign keys");
    let mut problems = Vec::new();

    // Every listed table exists; every table is listed or is a tenant table.
    for (name, _, why) in REGISTRY.iter().chain(GROUP_TABLES) {
        if !tables.iter().any(|t| t.table_name == *name) {
            problems.push(format!(
                "{name}: listed as exempt ({why}) but no longer in the schema; \
                 drop it from the list here and from deploy/SCALING.md"
            ));
        }
    }
    let mut placement = std::collections::BTreeMap::new();
    for t in &tables {
        let p = match listed(&t.table_name) {
            Some((p, _)) => p,
            None if t.tenant_id_not_null.is_some() => Placement::ByTenant,
            None => {
                problems.push(format!(
                    "{}: has no tenant_id and is not listed as a registry or group table; \
                     classify it in tests/tests/schema_plan.rs and deploy/SCALING.md",
                    t.table_name
                ));
                continue;
            }
        };
        // The distribution column exists and is NOT NULL (Citus rejects a row whose
        // distribution column is NULL).
        if let Some(column) = distribution_column(p) {
            let not_null = if column == "tenant_id" {
                t.tenant_id_not_null
            } else {
                t.group_id_not_null
            };
            match not_null {
                None => problems.push(format!(
                    "{}: placed by {column} but has no {column} column",
                    t.table_name
                )),
                Some(false) => problems.push(format!(
                    "{}: distribution column {column} is nullable; it must be NOT NULL",
                    t.table_name
                )),
                Some(true) => {}
            }
        }
        placement.insert(t.table_name.clone(), p);
    }

    // Keys: tenant tables lead with tenant_id, group tables with group_id (reference
    // group tables too, so they can still be distributed by group later).
    for key in &keys {
        let Some(&p) = placement.get(&key.table_name) else {
            continue;
        };
        let lead = if GROUP_TABLES.iter().any(|(t, _, _)| *t == key.table_name) {
            "group_id"
        } else if p == Placement::ByTenant {
            "tenant_id"
        } else {
            continue;
        };
        if key.columns.first().map(String::as_str) != Some(lead) {
            problems.push(format!(
                "{}: {} {} is ({}); it must lead with {lead}",
                key.table_name,
                key.kind,
                key.key_name,
                key.columns.join(", ")
            ));
        }
    }

    // Foreign keys, by where the two tables live.
    for fk in &foreign {
        let Some(&from) = placement.get(&fk.table_name) else {
            continue;
        };
        let to = placement.get(&fk.referenced).copied();
        let shown = format!(
            "{}: foreign key {} ({}) -> {} ({})",
            fk.table_name,
            fk.key_name,
            fk.columns.join(", "),
            fk.referenced,
            fk.referenced_columns.join(", ")
        );
        match distribution_column(from) {
            Some(column) => {
                if fk.columns.first().map(String::as_str) != Some(column) {
                    problems.push(format!("{shown}: must lead with {column}"));
                }
                match to {
                    Some(Placement::Reference) => {}
                    Some(target) if target == from => {
                        if fk.referenced_columns.first().map(String::as_str) != Some(column) {
                            problems.push(format!(
                                "{shown}: the referenced columns must lead with {column}"
                            ));
                        }
                    }
                    other => problems.push(format!(
                        "{shown}: a table distributed by {column} may refer only to a \
                         reference table or a table co-located with it, not to {}",
                        describe(other)
                    )),
                }
            }
            None => {
                let allowed = match from {
                    Placement::Reference => matches!(to, Some(Placement::Reference)),
                    _ => matches!(to, Some(Placement::Reference | Placement::Coordinator)),
                };
                if !allowed {
                    problems.push(format!(
                        "{shown}: a {} table may not refer to {}",
                        describe(Some(from)),
                        describe(to)
                    ));
                }
            }
        }
    }
    problems
}

fn describe(p: Option<Placement>) -> &'static str {
    match p {
        Some(Placement::ByTenant) => "a table distributed by tenant_id",
        Some(Placement::ByGroup) => "a table distributed by group_id",
        Some(Placement::Reference) => "reference",
        Some(Placement::Coordinator) => "coordinator-local",
        None => "an unclassified table",
    }
}

fn with_postgres(db: &TestDb, check: impl FnOnce(&mut PgConnection)) {
    let store = db.store();
    let mut conn = store.connection().unwrap();
    let DbConnection::Postgres(pg) = &mut *conn else {
        unreachable!("a PostgreSQL test database")
    };
    check(pg);
}

#[test]
fn every_key_of_a_distributed_table_leads_with_its_distribution_column() {
    let Some(db) = TestDb::postgres() else { return };
    with_postgres(&db, |pg| {
        let tables: Vec<TableRow> = diesel::sql_query(TABLES).load(pg).unwrap();
        let tenant_tables = tables
            .iter()
            .filter(|t| t.tenant_id_not_null.is_some() && listed(&t.table_name).is_none())
            .count();
        assert!(tenant_tables > 30, "the schema was read: {tables:?}");
        let problems = violations(pg);
        assert!(
            problems.is_empty(),
            "the schema departs from deploy/SCALING.md:\n  {}",
            problems.join("\n  ")
        );
    });
}

/// The check itself: each kind of departure from the plan, made on a scratch copy of
/// the schema, is reported by name.
#[test]
fn the_plan_check_names_each_departure() {
    let Some(db) = TestDb::postgres() else { return };
    with_postgres(&db, |pg| {
        for ddl in [
            // A tenant table whose primary key does not lead with tenant_id, and whose
            // foreign key points at a coordinator-local table.
            "CREATE TABLE plan_bad_pk (id TEXT NOT NULL, tenant_id TEXT NOT NULL \
             REFERENCES tenants (id), chat_id BIGINT REFERENCES telegram_chat_state (chat_id), \
             PRIMARY KEY (id, tenant_id))",
            // A unique index on a tenant table that does not lead with tenant_id.
            "CREATE UNIQUE INDEX plan_bad_unique ON subjects (email_index, tenant_id)",
            // A tenant table with a nullable tenant_id.
            "CREATE TABLE plan_loose (tenant_id TEXT, note TEXT)",
            // A foreign key between tenant tables that does not lead with tenant_id.
            "CREATE UNIQUE INDEX plan_subject_id ON subjects (id, tenant_id)",
            "CREATE TABLE plan_bad_fk (tenant_id TEXT NOT NULL, subject_id TEXT NOT NULL, \
             PRIMARY KEY (tenant_id, subject_id), CONSTRAINT plan_bad_fk_subject \
             FOREIGN KEY (subject_id, tenant_id) REFERENCES subjects (id, tenant_id))",
            // A group table key that does not lead with group_id.
            "CREATE UNIQUE INDEX plan_bad_group ON group_identities (person_id, group_id)",
            // A new table that is neither tenant-led nor listed.
            "CREATE TABLE plan_stray (id TEXT PRIMARY KEY)",
            // A listed table that disappeared.
            "DROP TABLE telegram_updates",
        ] {
            diesel::sql_query(ddl)
                .execute(pg)
                .unwrap_or_else(|e| panic!("{ddl}: {e}"));
        }
        let problems = violations(pg);
        let all = problems.join("\n");
        for expected in [
            "plan_bad_pk: primary key plan_bad_pk_pkey is (id, tenant_id); it must lead with tenant_id",
            "plan_bad_pk: foreign key plan_bad_pk_chat_id_fkey (chat_id) -> telegram_chat_state (chat_id): must lead with tenant_id",
            "plan_bad_pk: foreign key plan_bad_pk_chat_id_fkey (chat_id) -> telegram_chat_state (chat_id): a table distributed by tenant_id may refer only to a reference table or a table co-located with it, not to coordinator-local",
            "subjects: unique index plan_bad_unique is (email_index, tenant_id); it must lead with tenant_id",
            "plan_loose: distribution column tenant_id is nullable",
            "subjects: unique index plan_subject_id is (id, tenant_id); it must lead with tenant_id",
            "plan_bad_fk: foreign key plan_bad_fk_subject (subject_id, tenant_id) -> subjects (id, tenant_id): must lead with tenant_id",
            "plan_bad_fk: foreign key plan_bad_fk_subject (subject_id, tenant_id) -> subjects (id, tenant_id): the referenced columns must lead with tenant_id",
            "group_identities: unique index plan_bad_group is (person_id, group_id); it must lead with group_id",
            "plan_stray: has no tenant_id and is not listed",
            "telegram_updates: listed as exempt",
        ] {
            assert!(
                all.contains(expected),
                "expected a violation containing {expected:?}, got:\n{all}"
            );
        }
        assert_eq!(
            problems.len(),
            11,
            "nothing but the planted departures is reported:\n{all}"
        );
    });
}
