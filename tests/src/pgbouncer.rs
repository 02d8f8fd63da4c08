//! PgBouncer in transaction pooling mode in front of a test's PostgreSQL database, as
//! production runs it: each transaction may get another server connection, so
//! nothing kept per session (a `SET`, a prepared statement, a `LISTEN`) can be relied
//! on.
//!
//! It runs when [`POSTGRES_ENV`] is set and the `pgbouncer` binary (Debian's package,
//! 1.18 on bookworm) is installed; `.ci/run` installs it and sets [`REQUIRE_ENV`], so
//! there a missing PgBouncer fails instead of skipping. PgBouncer refuses to run as
//! root, so under root it runs as the `postgres` OS user.

use crate::pg_cluster::{free_port, is_root, os_user_ids};
use crate::{APP_ROLE, POSTGRES_ENV, TestDb};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Set (to anything) where PgBouncer must be there: CI.
pub const REQUIRE_ENV: &str = "ASSENT_TEST_REQUIRE_PGBOUNCER";

const BINARIES: &[&str] = &["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"];

/// A running PgBouncer, stopped when dropped.
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl PgBouncer {
    /// PgBouncer in transaction mode for `db`'s server, with at most `server_connections`
    /// server connections per database and user; `None` (with a line on stderr) where
    /// it cannot run and is not required.
    pub fn start(db: &TestDb, server_connections: u32) -> Option<Self> {
        std::env::var_os(POSTGRES_ENV)?;
        let Some(bin) = BINARIES.iter().map(PathBuf::from).find(|b| b.exists()) else {
            assert!(
                std::env::var_os(REQUIRE_ENV).is_none(),
                "{REQUIRE_ENV} is set but pgbouncer is not installed (apt-get install pgbouncer)"
            );
            eprintln!("SKIPPED through PgBouncer: install pgbouncer to run");
            return None;
        };
        let upstream = url::Url::parse(&db.url).expect("a PostgreSQL URL");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, format!("\"{APP_ROLE}\" \"{APP_ROLE}\"\n")).expect("users file");
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n\
                 * = host={host} port={upstream_port}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = plain\n\
                 auth_file = {users}\n\
                 pool_mode = transaction\n\
                 default_pool_size = {server_connections}\n\
                 max_client_conn = 1000\n\
                 server_reset_query =\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {log}\n",
                host = upstream.host_str().unwrap_or("127.0.0.1"),
                upstream_port = upstream.port().unwrap_or(5432),
                users = users.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )
        .expect("pgbouncer.ini");
        let mut command = Command::new(&bin);
        if is_root() {
            let (uid, gid) = os_user_ids();
            for path in [dir.path().to_path_buf(), users.clone(), ini.clone()] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown for pgbouncer");
            }
            command.arg("-u").arg("postgres");
        }
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let bouncer = PgBouncer { child, port, dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer did not listen within 10 s: {}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(bouncer)
    }

    /// `db`'s URL, through PgBouncer.
    pub fn url_for(&self, db: &TestDb) -> String {
        let mut url = url::Url::parse(&db.url).expect("a PostgreSQL URL");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(self.port)).expect("port");
        url.to_string()
    }

    /// What PgBouncer logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
