//! The store on both backends: schema parity, row-level security, repositories.

use assent_core::page::PageRequest;
use assent_core::problem::ProblemCode;
use assent_core::tenancy::{Jurisdiction, Locale, Role};
use assent_store::flows::registry;
use assent_store::tables::api_keys::{self, ClientRejected};
use assent_store::tables::idempotency::{self, StoredResponse};
use assent_store::tables::tenants::{self, NewTenant};
use assent_store::{Backend, DbConnection, Store, StoreError};
use assent_tests::{TestDb, with_database};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};
use diesel::{PgConnection, SqliteConnection};
use std::collections::BTreeSet;

/// Installation-level tables.
// The bot's tables: its directories map a link token or a chat to its tenant before
// the bot knows the tenant (like the API key directory), and a chat's language and
// menu, and the update ids seen, belong to no tenant. Ids and digests only.
const REGISTRY_TABLES: &[&str] = &[
    "tenant_groups",
    "tenants",
    "api_key_directory",
    "telegram_link_tokens",
    "telegram_chat_directory",
    "telegram_chat_state",
    "telegram_updates",
    "job_schedule",
    "telegram_send_slots",
    "calendar_years",
];
/// Group-owned tables (shared by the affiliates of a group); everything else is tenant-owned.
const GROUP_TABLES: &[&str] = &[
    "group_purposes",
    "group_identities",
    "group_consent_states",
    "group_purpose_codes",
];

fn new_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.into(),
        legal_name: format!("{slug} LLC"),
        group_id: None,
        jurisdiction: Jurisdiction::Gdpr,
        timezone: chrono_tz::UTC.into(),
        default_locale: Locale::En,
    }
}

fn tenant(store: &Store, slug: &str) -> String {
    store
        .system(|c| registry::create_tenant(c, new_tenant(slug)))
        .unwrap()
        .id
        .into()
}

#[derive(QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

fn columns(store: &Store) -> BTreeSet<(String, String, bool)> {
    let mut conn = store.connection().unwrap();
    let rows: Vec<Column> = match &mut *conn {
        DbConnection::Postgres(pg) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             (is_nullable = 'YES') AS nullable FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
        )
        .load(pg)
        .unwrap(),
        DbConnection::Sqlite(lite) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, (p.\"notnull\" = 0) AS nullable \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'",
        )
        .load(lite)
        .unwrap(),
    };
    rows.into_iter()
        .map(|c| (c.table_name, c.column_name, c.nullable))
        .collect()
}

#[test]
fn both_backends_have_the_same_tables_and_columns() {
    let sqlite = TestDb::sqlite();
    let Some(postgres) = TestDb::postgres() else {
        return;
    };
    let lite = columns(&sqlite.store());
    let pg = columns(&postgres.store());
    assert!(lite.len() > 10, "the schema was read: {lite:?}");
    let only_lite: Vec<_> = lite.difference(&pg).collect();
    let only_pg: Vec<_> = pg.difference(&lite).collect();
    assert!(
        only_lite.is_empty() && only_pg.is_empty(),
        "only in SQLite: {only_lite:?}; only in PostgreSQL: {only_pg:?}"
    );
}

#[test]
fn migrations_apply_once_on_each_backend() {
    for db in TestDb::all() {
        let store = db.store();
        assert!(
            store.migrate().unwrap().is_empty(),
            "second run applies nothing on {}",
            db.backend
        );
    }
}

#[derive(QueryableByName)]
struct KeyColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[test]
fn every_tenant_key_starts_with_tenant_id() {
    let Some(db) = TestDb::postgres() else { return };
    let store = db.store();
    let mut conn = store.connection().unwrap();
    let DbConnection::Postgres(pg) = &mut *conn else {
        unreachable!()
    };
    // The first column of every primary and unique key.
    let firsts: Vec<KeyColumn> = diesel::sql_query(
        "SELECT c.relname::text AS table_name, a.attname::text AS column_name \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
         WHERE n.nspname = 'public' AND (i.indisprimary OR i.indisunique) \
         AND c.relname <> '__diesel_schema_migrations'",
    )
    .load(pg)
    .unwrap();
    let owned: Vec<_> = firsts
        .iter()
        .filter(|k| !REGISTRY_TABLES.contains(&k.table_name.as_str()))
        .collect();
    assert!(owned.len() > 10);
    for key in owned {
        let expected = if GROUP_TABLES.contains(&key.table_name.as_str()) {
            "group_id"
        } else {
            "tenant_id"
        };
        assert_eq!(
            key.column_name, expected,
            "a key of {} must start with {expected}",
            key.table_name
        );
    }
}

#[derive(QueryableByName)]
struct Rls {
    #[diesel(sql_type = Text)]
    relname: String,
    #[diesel(sql_type = Bool)]
    relrowsecurity: bool,
    #[diesel(sql_type = Bool)]
    relforcerowsecurity: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    n: i32,
}

fn count_keys(pg: &mut PgConnection) -> i32 {
    diesel::sql_query("SELECT count(*)::int AS n FROM api_keys")
        .get_result::<Count>(pg)
        .unwrap()
        .n
}

#[test]
fn row_level_security_hides_other_tenants_from_a_plain_role() {
    let Some(db) = TestDb::postgres() else { return };
    let store = db.store();
    let a = tenant(&store, "tenant-a");
    let b = tenant(&store, "tenant-b");
    store
        .write(&a, |c| api_keys::create(c, &a, Role::Admin, "a"))
        .unwrap();
    store
        .write(&b, |c| api_keys::create(c, &b, Role::Admin, "b1"))
        .unwrap();
    store
        .write(&b, |c| api_keys::create(c, &b, Role::Admin, "b2"))
        .unwrap();

    let mut conn = store.connection().unwrap();
    let DbConnection::Postgres(owner) = &mut *conn else {
        unreachable!()
    };
    let tables: Vec<Rls> = diesel::sql_query(
        "SELECT c.relname::text AS relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND EXISTS \
         (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname IN ('tenant_id', 'group_id'))",
    )
    .load(owner)
    .unwrap();
    for t in tables
        .iter()
        .filter(|t| !REGISTRY_TABLES.contains(&t.relname.as_str()))
    {
        assert!(
            t.relrowsecurity && t.relforcerowsecurity,
            "RLS must be enabled and forced on {}",
            t.relname
        );
    }

    // A role that is neither superuser nor BYPASSRLS, as an application should run.
    let role = format!("assent_app_{}", uuid::Uuid::now_v7().simple());
    let mut admin = db.admin_connection().unwrap();
    diesel::sql_query(format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS"))
        .execute(&mut admin)
        .unwrap();
    diesel::sql_query(format!(
        "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}"
    ))
    .execute(owner)
    .unwrap();
    let admin_url = std::env::var(assent_tests::POSTGRES_ENV).unwrap();
    let db_name = db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let role_url = with_database(&admin_url, &db_name).replacen("://", &format!("://{role}@"), 1);
    let role_url = strip_user(&role_url, &role);
    let mut app = PgConnection::establish(&role_url).unwrap();

    assert_eq!(
        count_keys(&mut app),
        0,
        "without app.tenant_id nothing is visible"
    );
    app.transaction::<_, diesel::result::Error, _>(|c| {
        diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
            .bind::<Text, _>(&a)
            .execute(c)?;
        assert_eq!(count_keys(c), 1, "tenant A sees only its own key");
        let insert = diesel::sql_query(
            "INSERT INTO api_keys (tenant_id, id, role, label, secret_digest, created_at) \
             VALUES ($1, 'x', 'admin', '', '\\x00', now())",
        )
        .bind::<Text, _>(&b)
        .execute(c);
        assert!(insert.is_err(), "tenant A cannot write a row of tenant B");
        Err::<(), _>(diesel::result::Error::RollbackTransaction)
    })
    .unwrap_err();
    app.transaction::<_, diesel::result::Error, _>(|c| {
        diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
            .bind::<Text, _>(&b)
            .execute(c)?;
        assert_eq!(count_keys(c), 2, "tenant B sees its two keys");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        count_keys(&mut app),
        0,
        "the setting ends with the transaction"
    );
    drop(app);
    diesel::sql_query(format!("DROP OWNED BY {role}"))
        .execute(&mut admin)
        .unwrap();
    diesel::sql_query(format!("DROP ROLE {role}"))
        .execute(&mut admin)
        .unwrap();
}

/// Replaces whatever user the admin URL had with `role`.
fn strip_user(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{role}@{host_and_path}")
}

#[test]
fn tenants_have_unique_slugs_and_known_groups() {
    for db in TestDb::all() {
        let store = db.store();
        tenant(&store, "acme");
        let err = store
            .system(|c| registry::create_tenant(c, new_tenant("acme")))
            .unwrap_err();
        assert!(err.is(ProblemCode::AlreadyExists), "{} {err:?}", db.backend);
        let mut orphan = new_tenant("orphan");
        orphan.group_id = Some(assent_core::id::new_id());
        let err = store
            .system(|c| registry::create_tenant(c, orphan))
            .unwrap_err();
        assert!(err.is(ProblemCode::UnknownGroup), "{} {err:?}", db.backend);
        let group = store
            .system(|c| tenants::create_group(c, "Holding"))
            .unwrap();
        let mut member = new_tenant("member");
        member.group_id = Some(group.id.clone());
        let member = store
            .system(|c| registry::create_tenant(c, member))
            .unwrap();
        assert_eq!(member.group_id, Some(group.id.into()));
        let slugs: Vec<_> = store
            .system(tenants::list_tenants)
            .unwrap()
            .into_iter()
            .map(|t| t.slug)
            .collect();
        assert_eq!(slugs, vec!["acme", "member"], "{}", db.backend);
    }
}

#[test]
fn api_keys_authenticate_until_revoked() {
    for db in TestDb::all() {
        let store = db.store();
        let t = tenant(&store, "acme");
        let created = store
            .write(&t, |c| api_keys::create(c, &t, Role::Operator, "crm"))
            .unwrap();
        let id = created.key.id.clone();
        let ok = store
            .authenticate_client(&id, &created.secret)
            .unwrap()
            .unwrap();
        assert_eq!(ok.role(), Role::Operator);
        assert!(
            store
                .read(&t, |c| api_keys::get(c, &t, &id))
                .unwrap()
                .unwrap()
                .last_used_at
                .is_some()
        );
        assert_eq!(
            store.authenticate_client(&id, "assent_sk_wrong").unwrap(),
            Err(ClientRejected::WrongSecret)
        );
        assert_eq!(
            store
                .authenticate_client("nobody", &created.secret)
                .unwrap(),
            Err(ClientRejected::UnknownClient)
        );
        let revoked = store.revoke_client(&id).unwrap();
        let first_revocation = revoked.revoked_at.unwrap();
        assert_eq!(
            store.authenticate_client(&id, &created.secret).unwrap(),
            Err(ClientRejected::Revoked)
        );
        let again = store.revoke_client(&id).unwrap();
        assert_eq!(
            again.revoked_at,
            Some(first_revocation),
            "revoking twice keeps the first time"
        );
        assert!(matches!(
            store.revoke_client("nobody"),
            Err(StoreError::NotFound)
        ));
    }
}

/// A value outside its set, written behind Assent's back (a hand edit, a bad
/// restore), fails the read that meets it; it never turns into a default.
#[test]
fn a_stored_value_outside_its_set_is_an_error_not_a_default() {
    use assent_store::schema;
    let is_unreadable = |e: &StoreError| {
        matches!(
            e,
            StoreError::Database(diesel::result::Error::DeserializationError(_))
        )
    };
    for db in TestDb::all() {
        let store = db.store();
        let id = tenant(&store, "odd");
        let key = store
            .write(&id, |c| api_keys::create(c, &id, Role::Operator, "k"))
            .unwrap()
            .key;
        assert_eq!(key.role(), Role::Operator);

        store
            .write(&id, |c| {
                Ok(diesel::update(schema::api_keys::table)
                    .filter(schema::api_keys::id.eq(&key.id))
                    .set(schema::api_keys::role.eq("root"))
                    .execute(c.conn())?)
            })
            .unwrap();
        let err = store
            .read(&id, |c| api_keys::get(c, &id, &key.id))
            .unwrap_err();
        assert!(is_unreadable(&err), "{}: {err:?}", db.backend);

        store
            .system(|c| {
                Ok(diesel::update(schema::tenants::table.find(&id))
                    .set(schema::tenants::timezone.eq("Mars/Olympus"))
                    .execute(c)?)
            })
            .unwrap();
        let err = store.system(|c| tenants::find_tenant(c, &id)).unwrap_err();
        assert!(is_unreadable(&err), "{}: {err:?}", db.backend);
        assert!(format!("{err:?}").contains("Mars/Olympus"), "{err:?}");
    }
}

#[test]
fn key_listing_pages_through_everything_once() {
    for db in TestDb::all() {
        let store = db.store();
        let t = tenant(&store, "acme");
        let other = tenant(&store, "other");
        store
            .write(&other, |c| {
                api_keys::create(c, &other, Role::Admin, "not mine")
            })
            .unwrap();
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(
                store
                    .write(&t, |c| {
                        api_keys::create(c, &t, Role::Auditor, &format!("k{i}"))
                    })
                    .unwrap()
                    .key
                    .id,
            );
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = PageRequest::parse(cursor.as_deref(), Some(2)).unwrap();
            let (items, next) = store.read(&t, |c| api_keys::list(c, &t, &page)).unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.into_iter().map(|k| k.id));
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(
            seen, created,
            "every key once, in creation order, none of another tenant ({})",
            db.backend
        );
    }
}

#[test]
fn idempotency_keys_replay_and_refuse_reuse() {
    for db in TestDb::all() {
        let store = db.store();
        let t = tenant(&store, "acme");
        let stored = StoredResponse {
            status: 201,
            body: "{\"a\":1}".into(),
        };
        store
            .write(&t, |c| {
                idempotency::record(c, &t, "k", "POST /x", b"digest", &stored)
            })
            .unwrap();
        let found = store
            .read(&t, |c| idempotency::find(c, &t, "k", "POST /x", b"digest"))
            .unwrap();
        assert_eq!(found, Some(stored));
        let reuse = store.read(&t, |c| idempotency::find(c, &t, "k", "POST /x", b"other"));
        assert!(
            matches!(reuse, Err(e) if e.is(ProblemCode::IdempotencyKeyReused)),
            "{}",
            db.backend
        );
        let other = tenant(&store, "other");
        let theirs = store
            .read(&other, |c| {
                idempotency::find(c, &other, "k", "POST /x", b"digest")
            })
            .unwrap();
        assert_eq!(theirs, None, "keys are per tenant");
    }
}

#[test]
fn a_failed_unit_of_work_writes_nothing() {
    for db in TestDb::all() {
        let store = db.store();
        let t = tenant(&store, "acme");
        let result: Result<(), StoreError> = store.write(&t, |c| {
            api_keys::create(c, &t, Role::Admin, "half")?;
            Err(StoreError::invalid("stop"))
        });
        assert!(result.is_err());
        let page = PageRequest::parse(None, None).unwrap();
        let (items, _) = store.read(&t, |c| api_keys::list(c, &t, &page)).unwrap();
        assert!(items.is_empty(), "{}", db.backend);
    }
}

#[test]
fn sqlite_connections_are_durable_and_enforce_foreign_keys() {
    let db = TestDb::sqlite();
    assert_eq!(db.backend, Backend::Sqlite);
    let store = db.store();
    let mut conn = store.connection().unwrap();
    let DbConnection::Sqlite(lite) = &mut *conn else {
        unreachable!()
    };
    #[derive(QueryableByName)]
    struct Pragma {
        #[diesel(sql_type = Text)]
        v: String,
    }
    let get =
        |c: &mut SqliteConnection, q: &str| diesel::sql_query(q).get_result::<Pragma>(c).unwrap().v;
    assert_eq!(
        get(lite, "SELECT journal_mode AS v FROM pragma_journal_mode"),
        "wal"
    );
    assert_eq!(
        get(
            lite,
            "SELECT CAST(synchronous AS TEXT) AS v FROM pragma_synchronous"
        ),
        "2"
    );
    assert_eq!(
        get(
            lite,
            "SELECT CAST(foreign_keys AS TEXT) AS v FROM pragma_foreign_keys"
        ),
        "1"
    );
    assert_eq!(
        get(
            lite,
            "SELECT CAST(timeout AS TEXT) AS v FROM pragma_busy_timeout"
        ),
        "5000"
    );
}

/// `sends_in_flight` holds a person's changes until each send's deadline: a tenant
/// writes only its own rows, in its own group, with a near deadline (a forged row
/// cannot hold a person for long), and sees its group's rows only for shared people.
#[test]
fn sends_in_flight_stay_in_their_tenant_group_and_time() {
    let Some(db) = TestDb::postgres() else { return };
    let store = db.store();
    let group = store
        .system(|c| tenants::create_group(c, "Group"))
        .unwrap()
        .id;
    let other_group = store
        .system(|c| tenants::create_group(c, "Other"))
        .unwrap()
        .id;
    let member = |slug: &str| {
        store
            .system(|c| {
                registry::create_tenant(
                    c,
                    NewTenant {
                        group_id: Some(group.clone()),
                        ..new_tenant(slug)
                    },
                )
            })
            .unwrap()
            .id
    };
    let (a, b) = (member("member-a"), member("member-b"));
    let insert = |group_id: Option<&str>, person: Option<&str>, deadline: &str| {
        store.write(&a, |c| {
            let DbConnection::Postgres(pg) = c.conn() else {
                unreachable!()
            };
            diesel::sql_query(format!(
                "INSERT INTO sends_in_flight (tenant_id, notification_id, attempt, channel, \
                 subject_id, group_id, person_id, deadline) \
                 VALUES ($1, $2, 1, 'email', 'subject', $3, $4, {deadline})"
            ))
            .bind::<Text, _>(&a)
            .bind::<Text, _>(uuid::Uuid::now_v7().to_string())
            .bind::<diesel::sql_types::Nullable<Text>, _>(group_id)
            .bind::<diesel::sql_types::Nullable<Text>, _>(person)
            .execute(pg)?;
            Ok(())
        })
    };
    let soon = "(now() AT TIME ZONE 'UTC') + interval '30 seconds'";
    insert(Some(&group), Some("person"), soon).expect("a send of its own");
    insert(None, None, soon).expect("a send concerning no one else");
    assert!(
        insert(
            Some(&group),
            Some("person"),
            "(now() AT TIME ZONE 'UTC') + interval '2 hours'"
        )
        .is_err(),
        "a deadline hours ahead would hold the person for hours"
    );
    assert!(
        insert(Some(&other_group), Some("person"), soon).is_err(),
        "a row in another group would hold that group's people"
    );

    let visible = |tenant: &str| {
        store
            .read(tenant, |c| {
                let DbConnection::Postgres(pg) = c.conn() else {
                    unreachable!()
                };
                #[derive(QueryableByName)]
                struct N {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                Ok(
                    diesel::sql_query("SELECT count(*) AS n FROM sends_in_flight")
                        .get_result::<N>(pg)?
                        .n,
                )
            })
            .unwrap()
    };
    assert_eq!(visible(&a), 2, "a tenant sees its own sends");
    assert_eq!(
        visible(&b),
        1,
        "an affiliate sees only the sends to a person the group shares"
    );
}

#[derive(QueryableByName, Debug)]
struct PlanStep {
    #[diesel(sql_type = Text)]
    detail: String,
}

fn check_plan(store: &Store, kind: assent_core::pii::IndexKind) -> Vec<String> {
    let sql = assent_store::tables::check_facts::plan_sql(kind);
    let mut conn = store.connection().unwrap();
    let DbConnection::Sqlite(c) = &mut *conn else {
        unreachable!()
    };
    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<PlanStep>(c)
        .unwrap()
        .into_iter()
        .map(|s| s.detail)
        .collect()
}

/// A check by email finds its subject through the blind index, on a file of 20,000
/// subjects, before statistics exist and after `PRAGMA optimize` gathered them;
/// not by walking the tenant's primary key (which a lookup ordered by id did).
#[test]
fn a_check_by_email_or_phone_uses_the_blind_index_as_the_table_grows() {
    use assent_core::pii::IndexKind;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("plan.db").display());
    let store = Store::open(&url, &Default::default()).unwrap();
    store.migrate().unwrap();
    let t = tenant(&store, "plans");
    {
        let mut conn = store.connection().unwrap();
        diesel::sql_query(
            "INSERT INTO subjects (tenant_id, id, email_index, phone_index, channels, \
             created_at, updated_at) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             SELECT ?, printf('%036d', i), randomblob(32), randomblob(32), 'email', \
             '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM n",
        )
        .bind::<Text, _>(&t)
        .execute(&mut *conn)
        .unwrap();
    }
    for when in ["without statistics", "after PRAGMA optimize"] {
        for (kind, index) in [
            (IndexKind::Email, "subjects_email"),
            (IndexKind::Phone, "subjects_phone"),
        ] {
            let plan = check_plan(&store, kind);
            let subjects = plan
                .iter()
                .find(|s| s.contains("subjects"))
                .unwrap_or_else(|| panic!("{when}: no step on subjects: {plan:?}"));
            assert!(
                subjects.contains(&format!("INDEX {index} (tenant_id=? AND")),
                "{when}: {kind:?} lookup by {subjects:?} ({plan:?})"
            );
            assert!(
                !plan.iter().any(|s| s.contains("TEMP B-TREE")),
                "{when}: the answer is sorted apart: {plan:?}"
            );
        }
        store.optimize().unwrap();
    }
    let DbConnection::Sqlite(c) = &mut *store.connection().unwrap() else {
        unreachable!()
    };
    let analysed =
        diesel::sql_query("SELECT idx AS detail FROM sqlite_stat1 WHERE tbl = 'subjects'")
            .load::<PlanStep>(c)
            .unwrap()
            .len();
    assert!(analysed > 0, "PRAGMA optimize analysed subjects");
}

/// On PostgreSQL a self-scoped read runs each statement in its own transaction, with
/// no BEGIN or COMMIT: the check's function sets the tenant scope itself and finds
/// the subject (one round trip); a statement that does not sees nothing, as
/// row-level security has no tenant for it.
#[test]
fn a_self_scoped_read_sees_only_what_scopes_itself() {
    use assent_store::tables::check_facts::{self, Lookup};
    use assent_store::tables::subjects;
    let Some(db) = TestDb::postgres() else { return };
    let store = db.store();
    let t = tenant(&store, "self-scoped");
    let other = tenant(&store, "someone-else");
    let id = assent_core::id::new_id();
    store
        .write(&t, |tx| {
            let tenant_id = tx.tenant_id().to_string();
            diesel::sql_query(
                "INSERT INTO subjects (tenant_id, id, channels, created_at, updated_at) \
                 VALUES ($1, $2, 'email', now(), now())",
            )
            .bind::<Text, _>(tenant_id)
            .bind::<Text, _>(&id)
            .execute(tx.conn())?;
            Ok(())
        })
        .unwrap();
    let found = store
        .read_self_scoped(&t, |tx| {
            let tenant_id = tx.tenant_id().to_string();
            check_facts::read(tx.conn(), &tenant_id, None, &Lookup::Id(&id), "news")
        })
        .unwrap()
        .expect("the function scopes itself and finds the subject");
    assert_eq!(found.subject_id, id);
    assert!(found.purpose.is_none(), "no such purpose");
    let unscoped = store
        .read_self_scoped(&t, |tx| subjects::facts(tx, &id))
        .unwrap();
    assert!(unscoped.is_none(), "a statement without scope sees nothing");
    assert!(
        store
            .read(&t, |tx| subjects::facts(tx, &id))
            .unwrap()
            .is_some(),
        "the same statement in a scoped read sees it"
    );
    let foreign = store
        .read_self_scoped(&other, |tx| {
            let tenant_id = tx.tenant_id().to_string();
            check_facts::read(tx.conn(), &tenant_id, None, &Lookup::Id(&id), "news")
        })
        .unwrap();
    assert!(foreign.is_none(), "another tenant's check finds nothing");
}

/// Periodic jobs run once per interval across the installation: of many workers
/// (here eight threads over two stores, each store its own pool, as two processes
/// have) that find a job due at once, exactly one claims it; none until its next due
/// time (less a little slack); then again exactly one.
#[test]
fn a_due_job_is_claimed_by_exactly_one_of_many_workers() {
    use assent_store::tables::job_schedule;
    for db in TestDb::all() {
        let stores = [db.store(), db.store()];
        let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        let minute = chrono::Duration::seconds(60);
        let claims_at = |now: chrono::NaiveDateTime| -> usize {
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..8)
                    .map(|i| {
                        let store = &stores[i % 2];
                        s.spawn(move || {
                            store
                                .system(|c| {
                                    job_schedule::claim(
                                        c,
                                        "expiry sweep",
                                        now,
                                        minute,
                                        &format!("w{i}"),
                                    )
                                })
                                .unwrap()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap())
                    .filter(|claimed| *claimed)
                    .count()
            })
        };
        assert_eq!(claims_at(start), 1, "{:?}: the first run", db.backend);
        let at = |seconds| start + chrono::Duration::seconds(seconds);
        assert_eq!(claims_at(at(50)), 0, "{:?}: not yet due", db.backend);
        // A tick a little early (timers, earlier jobs) still runs it.
        assert_eq!(claims_at(at(57)), 1, "{:?}: due, within slack", db.backend);
        let schedule = stores[0].system(job_schedule::all).unwrap();
        assert_eq!(schedule.len(), 1);
        assert_eq!(schedule[0].next_due_at, at(117), "next due");
        assert_eq!(schedule[0].claimed_at, Some(at(57)));
        // A clock ten hours ahead claims once and pushes the job far ahead; once
        // the clocks agree again the job is due at once, not in ten hours.
        assert_eq!(claims_at(at(36_000)), 1);
        assert_eq!(
            claims_at(at(200)),
            1,
            "{:?}: a far-ahead due time heals",
            db.backend
        );
        assert_eq!(claims_at(at(210)), 0);
    }
}

/// With the statement cache off (for PgBouncer in transaction mode before 1.21), a
/// connection keeps no prepared statement between statements: nothing a pooler could
/// hand to another client's server connection. With it on (the default), the queries
/// run are kept prepared.
#[test]
fn without_the_statement_cache_no_prepared_statement_outlives_its_statement() {
    use assent_store::StoreOptions;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let Some(db) = TestDb::postgres() else { return };
    db.store();
    for (cache, kept) in [(false, false), (true, true)] {
        let options = StoreOptions {
            statement_cache: cache,
            ..StoreOptions::default()
        };
        let store = Store::open(&db.url, &options).unwrap();
        let mut conn = store.connection().unwrap();
        for _ in 0..2 {
            tenants::list_tenants(&mut conn).unwrap();
        }
        let DbConnection::Postgres(pg) = &mut *conn else {
            unreachable!()
        };
        let prepared: Count = diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements")
            .get_result(pg)
            .unwrap();
        assert_eq!(
            prepared.n > 0,
            kept,
            "statement cache {cache}: {} prepared",
            prepared.n
        );
    }
}
