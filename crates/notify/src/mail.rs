//! The mail transport: SMTP when `ASSENT_SMTP_URL` is set, otherwise `.eml` files
//! under the data directory (the embedded default, so nothing is silently dropped).
//!
//! The `.eml` directory is a development sink, not a mailbox: nothing delivers or
//! expires its files, and erasure does not reach them (README: Erasure). They are
//! written readable by the server's user only (directory 0700, files 0600), and
//! `serve` warns when it is used with PostgreSQL, the production backend.

use crate::email::{Failure, classify_smtp};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::time::Instant;

/// The default number of pooled SMTP connections (lettre's default too).
pub const DEFAULT_POOL_SIZE: u32 = 10;

pub enum MailTransport {
    Smtp(SmtpPool),
    Files {
        dir: PathBuf,
        transport: AsyncFileTransport<Tokio1Executor>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid ASSENT_SMTP_URL: {0}")]
    BadUrl(String),
    #[error("cannot create the mail directory {0}: {1}")]
    Directory(PathBuf, std::io::Error),
    #[error("the SMTP pool size must be at least 1")]
    PoolSize,
}

impl MailTransport {
    /// `smtp_url` follows lettre's form: `smtp://host:25`, `smtps://user:pass@host`
    /// (implicit TLS), `smtp://host:587?tls=required` (STARTTLS).
    /// The pool holds up to [`DEFAULT_POOL_SIZE`] connections.
    pub fn from_config(smtp_url: Option<&str>, data_dir: &Path) -> Result<Self, MailError> {
        Self::from_config_with_pool_size(smtp_url, data_dir, DEFAULT_POOL_SIZE)
    }

    /// As [`MailTransport::from_config`], with at most `pool_size` pooled SMTP
    /// connections (at least 1; ignored for `.eml` files).
    pub fn from_config_with_pool_size(
        smtp_url: Option<&str>,
        data_dir: &Path,
        pool_size: u32,
    ) -> Result<Self, MailError> {
        if pool_size == 0 {
            return Err(MailError::PoolSize);
        }
        match smtp_url {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::BadUrl(e.to_string()))?
                    .pool_config(PoolConfig::new().max_size(pool_size));
                Ok(MailTransport::Smtp(SmtpPool::new(builder)))
            }
            None => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir).map_err(|e| MailError::Directory(dir.clone(), e))?;
                make_private(&dir).map_err(|e| MailError::Directory(dir.clone(), e))?;
                tracing::info!(dir = %dir.display(), "no SMTP server configured; mail is written as .eml files");
                Ok(MailTransport::Files {
                    transport: AsyncFileTransport::new(&dir),
                    dir,
                })
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MailTransport::Smtp(_) => "SMTP".into(),
            MailTransport::Files { dir, .. } => format!(".eml files in {}", dir.display()),
        }
    }

    /// Sends one message. SMTP errors are classified by [`classify_smtp`] (a 5xx reply is
    /// a [`Failure::Permanent`] bounce); failing to write an `.eml` file is transient.
    pub async fn send(&self, message: Message) -> Result<(), Failure> {
        match self {
            MailTransport::Smtp(pool) => smtp_send(pool.current(), message).await,
            MailTransport::Files { transport, dir } => {
                let id = transport
                    .send(message)
                    .await
                    .map_err(|e| Failure::Transient(format!("cannot write the .eml file: {e}")))?;
                // The directory is 0700 already; the file is narrowed too, so a copy
                // moved elsewhere stays private.
                set_mode(&dir.join(format!("{id}.eml")), 0o600)
                    .map_err(|e| Failure::Transient(format!("cannot protect the .eml file: {e}")))
            }
        }
    }
}

/// The SMTP transport and its pooled connections. A send cut off at its deadline
/// leaves its connection mid-transaction: lettre would put it back in the pool (a
/// dropped future does not mark it broken), and the next message on it would read the
/// cut one's reply, or flush its buffered bytes. So a cut retires the whole pool.
pub struct SmtpPool {
    builder: AsyncSmtpTransportBuilder,
    current: RwLock<Arc<AsyncSmtpTransport<Tokio1Executor>>>,
}

impl SmtpPool {
    fn new(builder: AsyncSmtpTransportBuilder) -> Self {
        let current = RwLock::new(Arc::new(builder.clone().build()));
        Self { builder, current }
    }

    fn current(&self) -> Arc<AsyncSmtpTransport<Tokio1Executor>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts a fresh pool in place of `used`, unless another cut already has (two cuts
    /// at once must not retire the fresh pool the first put in).
    fn retire(&self, used: &Arc<AsyncSmtpTransport<Tokio1Executor>>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&current, used) {
            *current = Arc::new(self.builder.clone().build());
        }
    }
}

async fn smtp_send(
    transport: Arc<AsyncSmtpTransport<Tokio1Executor>>,
    message: Message,
) -> Result<(), Failure> {
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| classify_smtp(&e))
}

impl MailTransport {
    /// Sends one message unless `deadline` comes first (`None`: cut off, it may or may
    /// not have arrived). The deadline wins a tie: nothing is written after it.
    pub async fn send_by(
        &self,
        message: Message,
        deadline: Instant,
    ) -> Option<Result<(), Failure>> {
        let MailTransport::Smtp(pool) = self else {
            return tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => None,
                r = self.send(message) => Some(r),
            };
        };
        let used = pool.current();
        let mut send = Box::pin(smtp_send(used.clone(), message));
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline) => {}
            r = &mut send => return Some(r),
        }
        // The cut connection is only dropped once its pool is shut down, so it is
        // closed rather than recycled; new sends use the fresh pool meanwhile.
        pool.retire(&used);
        tokio::spawn(async move {
            used.shutdown().await;
            drop(send);
        });
        None
    }
}

/// The mail directory, and files an older version left there, readable by the
/// server's user only.
fn make_private(dir: &Path) -> std::io::Result<()> {
    set_mode(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn two_cuts_on_one_pool_retire_it_once() {
        let pool = SmtpPool::new(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            "localhost",
        ));
        let used = pool.current();
        pool.retire(&used);
        let fresh = pool.current();
        assert!(!Arc::ptr_eq(&used, &fresh), "the cut pool is replaced");
        pool.retire(&used);
        assert!(
            Arc::ptr_eq(&fresh, &pool.current()),
            "a second cut of the same pool keeps the fresh one"
        );
    }

    use super::*;

    #[tokio::test]
    async fn without_smtp_mail_lands_as_eml_files() {
        let dir = tempfile::tempdir().unwrap();
        let transport = MailTransport::from_config(None, dir.path()).unwrap();
        let message = Message::builder()
            .from("Assent <noreply@example.org>".parse().unwrap())
            .to("someone@example.org".parse().unwrap())
            .subject("Проверка")
            .body("hello".to_owned())
            .unwrap();
        transport.send(message).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("To: someone@example.org"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn eml_files_are_readable_by_the_server_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        // A directory and a file an older version left world-readable.
        let mail = dir.path().join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        set_mode(&mail, 0o755).unwrap();
        std::fs::write(mail.join("old.eml"), "To: old@example.org").unwrap();
        set_mode(&mail.join("old.eml"), 0o644).unwrap();
        let transport = MailTransport::from_config(None, dir.path()).unwrap();
        let message = Message::builder()
            .from("noreply@example.org".parse().unwrap())
            .to("someone@example.org".parse().unwrap())
            .subject("x")
            .body("hello".to_owned())
            .unwrap();
        transport.send(message).await.unwrap();
        assert_eq!(mode(&mail), 0o700);
        let files: Vec<_> = std::fs::read_dir(&mail)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        for f in files {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }

    #[test]
    fn a_bad_smtp_url_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = MailTransport::from_config(Some("ftp://nope"), dir.path())
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with("invalid ASSENT_SMTP_URL"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_pool_size_is_configurable_but_not_zero() {
        let dir = tempfile::tempdir().unwrap();
        let url = Some("smtp://127.0.0.1:2525");
        let t = MailTransport::from_config_with_pool_size(url, dir.path(), 3).unwrap();
        assert_eq!(t.describe(), "SMTP");
        assert!(matches!(
            MailTransport::from_config_with_pool_size(url, dir.path(), 0),
            Err(MailError::PoolSize)
        ));
    }

    #[tokio::test]
    async fn an_unwritable_mail_directory_is_a_transient_failure() {
        let dir = tempfile::tempdir().unwrap();
        let transport = MailTransport::from_config(None, dir.path()).unwrap();
        std::fs::remove_dir_all(dir.path().join("mail")).unwrap();
        let message = Message::builder()
            .from("noreply@example.org".parse().unwrap())
            .to("someone@example.org".parse().unwrap())
            .subject("x")
            .body("hello".to_owned())
            .unwrap();
        let err = transport.send(message).await.unwrap_err();
        assert!(matches!(err, Failure::Transient(_)), "{err:?}");
    }
}
