//! The mail test kit itself: DKIM signatures made by lettre verify (and stop verifying
//! when a signed header or the body changes), messages sent over SMTP to the sink come
//! back intact, and the sink's faults reach lettre as transient or permanent errors.

use std::time::{Duration, Instant};

use assent_tests::mailcheck::{
    self, TestDkimKey, header, html_body, subject, test_dkim_ed25519, test_dkim_rsa, text_body,
    verify_dkim,
};
use assent_tests::smtp::{SmtpMode, SmtpSink};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

const UNSUBSCRIBE: &str = "<https://assent.test/u/one-click-token>, <mailto:unsub@assent.test>";

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

fn mailbox(s: &str) -> Mailbox {
    s.parse().unwrap()
}

fn unsigned_message(body: &str) -> Message {
    Message::builder()
        .from(mailbox("Assent <notify@assent.test>"))
        .to(mailbox("Subscriber <person@example.org>"))
        .subject("Your consent receipt")
        .header(ListUnsubscribe(UNSUBSCRIBE.to_owned()))
        .header(ListUnsubscribePost)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .unwrap()
}

fn signed(
    key: &TestDkimKey,
    algorithm: DkimSigningAlgorithm,
    header_canon: DkimCanonicalizationType,
) -> Vec<u8> {
    let mut message = unsigned_message("Hello, world.\r\nThis is the consent receipt.\r\n");
    let config = DkimConfig::new(
        "s2025".to_owned(),
        "assent.test".to_owned(),
        DkimSigningKey::new(&key.private_key_for_lettre, algorithm)
            .expect("lettre reads the test key"),
        [
            "From",
            "To",
            "Subject",
            "Date",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ]
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect(),
        DkimCanonicalization {
            header: header_canon,
            body: DkimCanonicalizationType::Relaxed,
        },
    );
    message.sign(&config);
    message.formatted()
}

fn replace(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in the message:\n{text}");
    text.replacen(from, to, 1).into_bytes()
}

fn check_dkim(
    key: &TestDkimKey,
    algorithm: DkimSigningAlgorithm,
    canon: DkimCanonicalizationType,
    a: &str,
) {
    let raw = signed(key, algorithm, canon);
    let verified = verify_dkim(&raw, &key.dns_txt)
        .unwrap_or_else(|e| panic!("{a} {canon:?}: {e}\n{}", String::from_utf8_lossy(&raw)));
    assert_eq!(verified.domain, "assent.test");
    assert_eq!(verified.selector, "s2025");
    assert_eq!(verified.algorithm, a);
    assert_eq!(verified.canonicalization, "relaxed/relaxed");
    assert!(verified.signs("List-Unsubscribe"), "{verified:?}");
    assert!(verified.signs("list-unsubscribe-post"), "{verified:?}");
    assert!(
        verified
            .signed_headers
            .iter()
            .all(|h| *h == h.to_lowercase())
    );

    let tampered = replace(&raw, "one-click-token", "other-token");
    assert!(
        verify_dkim(&tampered, &key.dns_txt).is_err(),
        "{a}: a changed List-Unsubscribe still verifies"
    );
    let tampered = replace(&raw, "Hello, world.", "Hello, World.");
    assert!(
        verify_dkim(&tampered, &key.dns_txt).is_err(),
        "{a}: a changed body still verifies"
    );
    let other_key = if a == "rsa-sha256" {
        test_dkim_ed25519()
    } else {
        test_dkim_rsa()
    };
    assert!(
        verify_dkim(&raw, &other_key.dns_txt).is_err(),
        "{a}: verifies with another key"
    );
}

// Relaxed header canonicalization only: lettre 0.11.23 signs `simple` headers over a
// DKIM-Signature folded differently from the one it inserts (the fold moves once `b=` is
// filled in), so its `simple/...` signatures fail here and in dkimpy alike. That
// includes `DkimConfig::default_config` (simple/relaxed): sign with relaxed/relaxed.

#[test]
fn dkim_ed25519_covers_list_unsubscribe_and_body() {
    let key = test_dkim_ed25519();
    check_dkim(
        &key,
        DkimSigningAlgorithm::Ed25519,
        DkimCanonicalizationType::Relaxed,
        "ed25519-sha256",
    );
}

#[test]
fn dkim_rsa_covers_list_unsubscribe_and_body() {
    let key = test_dkim_rsa();
    check_dkim(
        &key,
        DkimSigningAlgorithm::Rsa,
        DkimCanonicalizationType::Relaxed,
        "rsa-sha256",
    );
}

#[test]
fn dkim_unsigned_or_bad_record_is_an_error() {
    let raw = unsigned_message("Hello").formatted();
    assert!(verify_dkim(&raw, &test_dkim_ed25519().dns_txt).is_err());
    let raw = signed(
        &test_dkim_ed25519(),
        DkimSigningAlgorithm::Ed25519,
        DkimCanonicalizationType::Relaxed,
    );
    assert!(verify_dkim(&raw, "v=DKIM1; k=ed25519; p=").is_err());
}

#[test]
fn headers_and_bodies_are_read_back() {
    let raw = Message::builder()
        .from(mailbox("Assent <notify@assent.test>"))
        .to(mailbox("person@example.org"))
        .subject("Подтверждение согласия")
        .header(ListUnsubscribe(UNSUBSCRIBE.to_owned()))
        .header(ListUnsubscribePost)
        .multipart(MultiPart::alternative_plain_html(
            "Здравствуйте! Ваше согласие записано.".to_owned(),
            "<p>Здравствуйте! <b>Ваше согласие</b> записано.</p>".to_owned(),
        ))
        .unwrap()
        .formatted();
    assert_eq!(subject(&raw).as_deref(), Some("Подтверждение согласия"));
    assert_eq!(
        header(&raw, "list-unsubscribe"),
        vec![UNSUBSCRIBE.to_owned()]
    );
    assert_eq!(
        header(&raw, "List-Unsubscribe-Post"),
        vec!["List-Unsubscribe=One-Click"]
    );
    assert!(header(&raw, "X-Absent").is_empty());
    assert_eq!(
        text_body(&raw).trim_end(),
        "Здравствуйте! Ваше согласие записано."
    );
    assert_eq!(
        html_body(&raw).trim_end(),
        "<p>Здравствуйте! <b>Ваше согласие</b> записано.</p>"
    );

    let plain = unsigned_message("only text").formatted();
    assert_eq!(
        html_body(&plain),
        "",
        "a text-only message has no HTML part"
    );
    assert_eq!(
        mailcheck::parse(&plain).subject(),
        Some("Your consent receipt")
    );

    // A long header is folded on the wire and unfolded by `header`.
    let long = format!("<https://assent.test/u/{}>", "x".repeat(120));
    let raw = Message::builder()
        .from(mailbox("notify@assent.test"))
        .to(mailbox("person@example.org"))
        .header(ListUnsubscribe(format!(
            "{long}, <mailto:unsub@assent.test>"
        )))
        .body(String::from("x"))
        .unwrap()
        .formatted();
    assert_eq!(
        header(&raw, "List-Unsubscribe"),
        vec![format!("{long}, <mailto:unsub@assent.test>")]
    );
}

fn russian_message(to: &str) -> Message {
    Message::builder()
        .from(mailbox("Ассент <notify@assent.test>"))
        .to(mailbox(to))
        .subject("Ваше согласие подтверждено")
        .singlepart(SinglePart::plain(
            "Здравствуйте!\r\n.Строка с точкой в начале\r\n..и ещё одна\r\nКонец.\r\n".to_owned(),
        ))
        .unwrap()
}

fn transport(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.port())
        .timeout(Some(Duration::from_secs(5)))
        .build()
}

#[actix_web::test]
async fn smtp_sink_receives_messages_intact() {
    let sink = SmtpSink::start();
    let message = russian_message("Получатель <person@example.org>");
    let sent = message.formatted();
    transport(&sink).send(message).await.expect("send");

    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "notify@assent.test");
    assert_eq!(got[0].rcpt_to, vec!["person@example.org"]);
    // lettre ends DATA with CRLF.CRLF even after the message's final CRLF: one empty
    // last line more (which DKIM body canonicalization ignores).
    assert_eq!(
        got[0].data,
        [sent.as_slice(), b"\r\n"].concat(),
        "the message as sent"
    );
    assert_eq!(
        subject(&got[0].data).as_deref(),
        Some("Ваше согласие подтверждено")
    );
    assert_eq!(
        text_body(&got[0].data),
        "Здравствуйте!\r\n.Строка с точкой в начале\r\n..и ещё одна\r\nКонец.\r\n"
    );

    // The URL form, as configuration would give it.
    let from_url = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())
        .expect("lettre accepts the sink URL")
        .build();
    from_url
        .send(russian_message("second@example.org"))
        .await
        .expect("send via URL");
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].rcpt_to, vec!["second@example.org"]);

    // Lines starting with a dot (7bit text, so they go out as written): lettre stuffs
    // them, the sink unstuffs them.
    let body = ".hidden\r\n..two\r\n.\r\nend\r\n";
    let message = Message::builder()
        .from(mailbox("notify@assent.test"))
        .to(mailbox("third@example.org"))
        .subject("dots")
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .unwrap();
    let sent = message.formatted();
    assert!(header(&sent, "Content-Transfer-Encoding") == vec!["7bit"]);
    from_url.send(message).await.expect("send dots");
    let got = sink.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got[2].data, [sent.as_slice(), b"\r\n"].concat());
    assert!(text_body(&got[2].data).starts_with(body));
    assert_eq!(sink.count(), 3);
}

#[actix_web::test]
async fn smtp_sink_failures_are_transient_or_permanent_for_lettre() {
    let sink = SmtpSink::start();
    let mailer = transport(&sink);

    sink.set_mode(SmtpMode::TempFail);
    let err = mailer
        .send(russian_message("a@example.org"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "451 at RCPT: {err:?}");

    sink.set_mode(SmtpMode::PermFail);
    let err = mailer
        .send(russian_message("a@example.org"))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "550 at RCPT: {err:?}");

    sink.set_mode(SmtpMode::TempFailAfterData);
    let err = mailer
        .send(russian_message("a@example.org"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "451 after DATA: {err:?}");

    sink.set_mode(SmtpMode::PermFailAfterData);
    let err = mailer
        .send(russian_message("a@example.org"))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "554 after DATA: {err:?}");
    assert_eq!(sink.count(), 0, "refused messages are not recorded");

    sink.set_mode(SmtpMode::Accept);
    sink.reject_recipient("Gone@Example.org", 550);
    sink.reject_recipient("busy@example.org", 452);
    let err = mailer
        .send(russian_message("gone@example.org"))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.status().map(u16::from), Some(550));
    let err = mailer
        .send(russian_message("busy@example.org"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    mailer
        .send(russian_message("fine@example.org"))
        .await
        .expect("others still pass");
    sink.accept_recipient("gone@example.org");
    mailer
        .send(russian_message("gone@example.org"))
        .await
        .expect("accepted again");
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[0].rcpt_to, vec!["fine@example.org"]);
    assert_eq!(got[1].rcpt_to, vec!["gone@example.org"]);
}

#[actix_web::test]
async fn smtp_sink_stops_and_restarts_on_the_same_port() {
    let sink = SmtpSink::start();
    let port = sink.port();
    let mailer = transport(&sink);
    mailer
        .send(russian_message("a@example.org"))
        .await
        .expect("first");

    sink.stop();
    assert!(!sink.is_running());
    assert!(
        std::net::TcpStream::connect(sink.addr()).is_err(),
        "port still open"
    );
    let err = mailer
        .send(russian_message("a@example.org"))
        .await
        .unwrap_err();
    assert!(
        !err.is_permanent(),
        "an unreachable server is no permanent failure: {err:?}"
    );

    sink.restart();
    assert_eq!(sink.port(), port);
    mailer
        .send(russian_message("b@example.org"))
        .await
        .expect("the pool reconnects after a restart");
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].rcpt_to, vec!["b@example.org"]);
}

// lettre's pool bounds only the idle connections it keeps (max_size, 10): it opens a
// new connection for every send that finds none idle, so 1000 concurrent sends open
// 1000 connections. Senders bound their own concurrency, as the 10 workers here do
// (they still open about 20: a connection goes back to the pool in a task of its own,
// after the worker has asked for the next one).
#[actix_web::test]
async fn smtp_sink_serves_a_pool_of_concurrent_connections() {
    let sink = SmtpSink::start();
    let mailer = transport(&sink);
    let (workers, per_worker) = (10, 100);
    let n = workers * per_worker;
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for w in 0..workers {
        let mailer = mailer.clone();
        sends.spawn(async move {
            for i in 0..per_worker {
                mailer
                    .send(russian_message(&format!("user{w}-{i}@example.org")))
                    .await
                    .expect("send");
            }
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent.expect("send task");
    }
    let elapsed = started.elapsed();
    let got = sink.wait_for(n, Duration::from_secs(5)).await;
    assert_eq!(got.len(), n);
    let connections = sink.connections();
    assert!(
        connections <= 3 * workers as u64,
        "pooled connections are reused: {connections} for {n} messages"
    );
    eprintln!(
        "{n} messages over {connections} pooled connections in {elapsed:?} ({:.0}/s)",
        n as f64 / elapsed.as_secs_f64()
    );
}
