//! A private PostgreSQL cluster owned by one test: its own data directory, port and
//! socket directory in a temporary directory, so the test can crash and restart it
//! without touching the shared server the other tests use.
//!
//! It runs when [`POSTGRES_ENV`] is set, like every PostgreSQL test; then the server
//! binaries (`/usr/lib/postgresql/*/bin`, the newest) are required. PostgreSQL refuses
//! to run as root, so under root its commands run as the `postgres` OS user.

use crate::POSTGRES_ENV;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

const BIN_ROOT: &str = "/usr/lib/postgresql";
const OS_USER: &str = "postgres";

/// A running cluster, stopped and deleted when dropped (also when the test fails).
pub struct PgCluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// The uid and gid PostgreSQL runs as, when the tests run as root.
    run_as: Option<(u32, u32)>,
}

impl PgCluster {
    /// A new cluster, started; `None` (with a line on stderr) when PostgreSQL tests
    /// are not configured. Panics when they are and the binaries are missing.
    pub fn start() -> Option<Self> {
        if std::env::var_os(POSTGRES_ENV).is_none() {
            eprintln!(
                "SKIPPED on a private PostgreSQL cluster: set {POSTGRES_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test) to run"
            );
            return None;
        }
        let bin = newest_bin_dir().unwrap_or_else(|| {
            panic!(
                "{POSTGRES_ENV} is set but no PostgreSQL server binaries (initdb, pg_ctl) were \
                 found in {BIN_ROOT}/*/bin: install the server package (e.g. `postgresql`)"
            )
        });
        let run_as = is_root().then(os_user_ids);
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the cluster's directory to postgres");
        }
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
            run_as,
        };
        cluster.init();
        cluster.start_server();
        Some(cluster)
    }

    /// A superuser URL for the cluster's `postgres` database (TCP on 127.0.0.1).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: every server process is killed at once, as in a
    /// crash; the next start runs crash recovery.
    pub fn crash(&self) {
        self.pg_ctl(&["stop", "-m", "immediate"]);
    }

    /// Starts the server again (after [`PgCluster::crash`]) and waits until it accepts
    /// connections.
    pub fn start_server(&self) {
        let log = self.dir.path().join("postgres.log");
        self.pg_ctl(&["start", "-t", "120", "-l", path_str(&log)]);
    }

    /// The directory holding the cluster (data, socket, log); gone once dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(&self) {
        let data = self.data();
        self.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        // Appended rather than passed to `pg_ctl -o`, which goes through a shell.
        // fsync off: the crash is of the server's processes, not of the machine, so
        // what was written reaches the disk all the same; CI's disk is spared.
        let settings = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 100\n",
            self.port,
            self.dir.path().display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("configure the cluster");
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", path_str(&data), "-w"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    /// Runs one of the server's programs (as `postgres` under root); panics with its
    /// output and the server log when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}\n-- server log --\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        if let Some((uid, gid)) = self.run_as {
            // Setting the uid also drops root's supplementary groups.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("-- private PostgreSQL log --\n{}", self.log());
        }
        // Stopped whatever state it is in; the directory goes with `dir`.
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&data), "-w", "stop", "-m", "immediate"])
            .output();
    }
}

/// The `bin` directory of the newest PostgreSQL installed under [`BIN_ROOT`].
fn newest_bin_dir() -> Option<PathBuf> {
    std::fs::read_dir(BIN_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of the `postgres` OS user.
pub(crate) fn os_user_ids() -> (u32, u32) {
    let name = std::ffi::CString::new(OS_USER).unwrap();
    // SAFETY: `name` is a valid C string; the entry is read before any other
    // getpw* call could overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !entry.is_null(),
        "running as root, PostgreSQL needs the `{OS_USER}` OS user to run as; there is none"
    );
    // SAFETY: non-null, checked above.
    unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}
