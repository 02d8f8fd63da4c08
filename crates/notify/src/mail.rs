//! The mail transport: SMTP when `ASSENT_SMTP_URL` is set, otherwise `.eml` files
//! under the data directory (the embedded default, so nothing is silently dropped).

use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};

pub enum MailTransport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
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
    #[error("sending failed: {0}")]
    Send(String),
}

impl MailTransport {
    /// `smtp_url` follows lettre's form: `smtp://host:25`, `smtps://user:pass@host`
    /// (implicit TLS), `smtp://host:587?tls=required` (STARTTLS).
    pub fn from_config(smtp_url: Option<&str>, data_dir: &Path) -> Result<Self, MailError> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::BadUrl(e.to_string()))?
                    .build();
                Ok(MailTransport::Smtp(Box::new(transport)))
            }
            None => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir).map_err(|e| MailError::Directory(dir.clone(), e))?;
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

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            MailTransport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            MailTransport::Files { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
