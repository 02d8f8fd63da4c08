//! An in-process SMTP server for tests and benchmarks: it accepts mail on a real socket
//! (127.0.0.1, ephemeral port), records every message, and can be told to fail.
//!
//! Why hand-written: the embeddable server crates do not give the controls tests need.
//! `mailin-embedded` serves forever on a blocking thread pool (no way to stop it, drop
//! its connections or rebind the same port), and `mailcrab` is an application. The
//! protocol subset a submission client uses (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
//! VRFY, QUIT; no TLS, no AUTH) is a small state machine, written here on tokio.
//!
//! The server runs on its own thread with its own tokio runtime, so it works from sync
//! tests, `#[tokio::test]` and `#[actix_web::test]` alike, and `stop()` is synchronous:
//! when it returns, the port refuses connections and every open connection has been
//! reset.
//!
//! ```no_run
//! # async fn demo() {
//! use assent_tests::smtp::{SmtpMode, SmtpSink};
//! let sink = SmtpSink::start();
//! // point lettre at it: AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url())
//! sink.set_mode(SmtpMode::TempFail); // 451 at RCPT TO
//! sink.set_mode(SmtpMode::Accept);
//! let got = sink.wait_for(1, std::time::Duration::from_secs(5)).await;
//! # }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use lettre::{AsyncSmtpTransport, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The name the server gives in its greeting and EHLO answer.
pub const SERVER_NAME: &str = "smtp-sink.assent.test";

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse path of `MAIL FROM:<...>`, without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// The accepted forward paths of `RCPT TO:<...>`, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The raw RFC 5322 message: the DATA lines, dot-unstuffed, each with its line
    /// ending, without the terminating `.` line.
    pub data: Vec<u8>,
    /// When the end of DATA arrived.
    pub at: SystemTime,
    /// Which connection delivered it (1 for the first connection the sink accepted).
    pub connection: u64,
}

/// How the sink answers transactions (per-recipient rejections take precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpMode {
    /// 250 to everything: messages are recorded.
    #[default]
    Accept,
    /// `451 4.3.0` to every `RCPT TO` (a transient failure; nothing is recorded).
    TempFail,
    /// `550 5.7.1` to every `RCPT TO` (a permanent failure; nothing is recorded).
    PermFail,
    /// Accepts the envelope and the data, then answers `451 4.3.0` at the end of DATA
    /// (nothing is recorded).
    TempFailAfterData,
    /// Accepts the envelope and the data, then answers `554 5.7.1` at the end of DATA
    /// (nothing is recorded).
    PermFailAfterData,
    /// Never answers: new connections get no greeting and open ones no reply to their
    /// next command, until the client gives up or the sink stops (connections stalled
    /// this way stay stalled after the mode changes). For client timeout tests.
    Stall,
    /// Takes the whole message, then holds back the answer to the end of DATA until
    /// the mode changes: a send caught in flight. The message is recorded (with the
    /// time it was let through) when the hold ends.
    HoldData,
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    mode: SmtpMode,
    /// Lowercased address -> reply code.
    rejects: HashMap<String, u16>,
    connections: u64,
    /// Messages whose end of DATA was held back ([`SmtpMode::HoldData`]).
    held: usize,
    /// Lowercased address -> how long the answer to DATA (the 354) is held back.
    slow: HashMap<String, Duration>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the messages from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Running {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// A running (or stopped) SMTP sink. Dropping it stops it.
pub struct SmtpSink {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1 on a free port and serves until [`stop`](Self::stop) or drop.
    pub fn start() -> Self {
        Self::start_at("127.0.0.1:0")
    }

    /// A sink on a known address (a server process started before it points there).
    pub fn start_at(addr: &str) -> Self {
        let listener = StdTcpListener::bind(addr).expect("bind SMTP sink");
        let addr = listener.local_addr().expect("SMTP sink address");
        let shared = Arc::new(Shared::default());
        let running = spawn_server(listener, Arc::clone(&shared));
        Self {
            shared,
            addr,
            running: Mutex::new(Some(running)),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, no TLS, as lettre's
    /// `AsyncSmtpTransport::from_url` reads it (a `smtp://` URL without a `tls=`
    /// parameter means no TLS; lettre rejects `tls=none`).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// A lettre transport to this sink (plain SMTP, lettre's default pool).
    pub fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.addr.ip().to_string())
            .port(self.addr.port())
            .build()
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    pub fn count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Forgets the messages received so far.
    pub fn clear(&self) {
        self.shared.lock().messages.clear();
    }

    /// How many messages have been held at the end of DATA so far.
    pub fn held(&self) -> usize {
        self.shared.lock().held
    }

    /// How many connections the sink has accepted since it was created.
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }

    /// Waits until at least `n` messages have arrived and returns all of them.
    ///
    /// # Panics
    /// When fewer than `n` have arrived after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let state = self.shared.lock();
                if state.messages.len() >= n {
                    return state.messages.clone();
                }
                if Instant::now() >= deadline {
                    panic!(
                        "SMTP sink: expected {n} message(s) within {timeout:?}, got {}",
                        state.messages.len()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn set_mode(&self, mode: SmtpMode) {
        self.shared.lock().mode = mode;
    }

    pub fn mode(&self) -> SmtpMode {
        self.shared.lock().mode
    }

    /// Answers `RCPT TO:<addr>` (compared case-insensitively) with `code`, whatever the
    /// mode: 4xx codes are transient failures, 5xx permanent ones.
    ///
    /// # Panics
    /// When `code` is not in 400..=599.
    pub fn reject_recipient(&self, addr: &str, code: u16) {
        assert!(
            (400..=599).contains(&code),
            "reject_recipient: {code} is not a 4xx/5xx reply code"
        );
        self.shared.lock().rejects.insert(addr.to_lowercase(), code);
    }

    /// Removes a [`reject_recipient`](Self::reject_recipient) override.
    /// Holds back the go-ahead for DATA (the 354) by `delay` in transactions to
    /// `addr`: the client writes the message only after it.
    pub fn slow_recipient(&self, addr: &str, delay: Duration) {
        self.shared.lock().slow.insert(addr.to_lowercase(), delay);
    }

    pub fn accept_recipient(&self, addr: &str) {
        self.shared.lock().rejects.remove(&addr.to_lowercase());
    }

    pub fn is_running(&self) -> bool {
        self.running_guard().is_some()
    }

    /// Stops listening and resets every open connection (clients see connection
    /// refused, or a reset on a pooled connection). Synchronous: done when it returns.
    /// Recorded messages are kept. Does nothing when already stopped.
    pub fn stop(&self) {
        let running = self.running_guard().take();
        if let Some(running) = running {
            let _ = running.stop.send(true);
            if running.thread.join().is_err() {
                eprintln!("SMTP sink: server thread panicked");
            }
        }
    }

    /// Listens again on the same port (after [`stop`](Self::stop); a running sink is
    /// stopped first).
    ///
    /// # Panics
    /// When the port cannot be bound again (another process took it meanwhile).
    pub fn restart(&self) {
        self.stop();
        let listener = StdTcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("SMTP sink: rebind {}: {e}", self.addr));
        *self.running_guard() = Some(spawn_server(listener, Arc::clone(&self.shared)));
    }

    fn running_guard(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .field("running", &self.is_running())
            .field("messages", &self.count())
            .finish()
    }
}

fn spawn_server(listener: StdTcpListener, shared: Arc<Shared>) -> Running {
    listener
        .set_nonblocking(true)
        .expect("non-blocking SMTP listener");
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name(format!(
            "smtp-sink-{}",
            listener.local_addr().unwrap().port()
        ))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("SMTP sink runtime");
            runtime.block_on(accept_loop(listener, shared, stopped));
        })
        .expect("spawn SMTP sink thread");
    Running { stop, thread }
}

async fn accept_loop(
    listener: StdTcpListener,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
) {
    let listener = TcpListener::from_std(listener).expect("tokio SMTP listener");
    let mut tasks = JoinSet::new();
    let mut stop_signal = stopped.clone();
    loop {
        tokio::select! {
            _ = stop_signal.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let id = {
                        let mut state = shared.lock();
                        state.connections += 1;
                        state.connections
                    };
                    tasks.spawn(connection(stream, Arc::clone(&shared), id, stopped.clone()));
                }
                // Out of file descriptors and the like: let the moment pass.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    id: u64,
    mut stopped: watch::Receiver<bool>,
) {
    let mut io = BufReader::new(stream);
    let stop = tokio::select! {
        _ = stopped.wait_for(|stop| *stop) => true,
        _ = session(&mut io, &shared, id) => false,
    };
    if stop {
        // Reset instead of a graceful close, like a crashed or restarted server.
        let _ = io.get_ref().set_zero_linger();
    }
}

type Io = BufReader<TcpStream>;

/// Reads one line (up to and including `\n`); `Ok(false)` at end of stream.
async fn read_line(io: &mut Io, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    Ok(io.read_until(b'\n', line).await? > 0)
}

async fn reply(io: &mut Io, text: &str) -> io::Result<()> {
    io.write_all(text.as_bytes()).await
}

/// Acknowledges what has arrived at once instead of after the delayed-ACK timer.
///
/// lettre writes the message and then the final `.` line in two writes on a socket
/// without `TCP_NODELAY`, so Nagle holds the `.` back until the message is
/// acknowledged; with delayed ACKs that costs about 40 ms a message per connection (a
/// pool of 10 tops out near 250 messages/s). Setting `TCP_QUICKACK` before waiting for
/// more DATA sends the pending ACK now (Linux only; elsewhere the delay stays).
fn ack_now(io: &Io) {
    #[cfg(target_os = "linux")]
    let _ = io.get_ref().set_quickack(true);
    #[cfg(not(target_os = "linux"))]
    let _ = io;
}

/// Waits, answering nothing, until the client closes the connection.
async fn stall(io: &mut Io) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    while io.read(&mut buf).await? > 0 {}
    Ok(())
}

/// The address inside `FROM:<...>` / `TO:<...>`; `None` when malformed.
fn path_arg<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(&rest[..end])
}

async fn session(io: &mut Io, shared: &Shared, id: u64) -> io::Result<()> {
    if shared.lock().mode == SmtpMode::Stall {
        return stall(io).await;
    }
    reply(io, &format!("220 {SERVER_NAME} ESMTP test sink\r\n")).await?;

    let mut line = Vec::with_capacity(256);
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        if !read_line(io, &mut line).await? {
            return Ok(());
        }
        let mode = shared.lock().mode;
        if mode == SmtpMode::Stall {
            return stall(io).await;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                mail_from = None;
                rcpt_to.clear();
                reply(
                    io,
                    &format!(
                        "250-{SERVER_NAME} greets {arg}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                         250-ENHANCEDSTATUSCODES\r\n250 SIZE 0\r\n"
                    ),
                )
                .await?;
            }
            "HELO" => {
                mail_from = None;
                rcpt_to.clear();
                reply(io, &format!("250 {SERVER_NAME}\r\n")).await?;
            }
            "MAIL" => match path_arg(arg, "FROM:") {
                _ if mail_from.is_some() => reply(io, "503 5.5.1 Nested MAIL command\r\n").await?,
                Some(from) => {
                    mail_from = Some(from.to_owned());
                    reply(io, "250 2.1.0 OK\r\n").await?;
                }
                None => reply(io, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n").await?,
            },
            "RCPT" => match path_arg(arg, "TO:") {
                _ if mail_from.is_none() => reply(io, "503 5.5.1 Need MAIL first\r\n").await?,
                Some(to) => {
                    let rejected = shared.lock().rejects.get(&to.to_lowercase()).copied();
                    match (rejected, mode) {
                        (Some(code), _) if code < 500 => {
                            reply(
                                io,
                                &format!("{code} 4.2.0 <{to}>: mailbox busy, try later\r\n"),
                            )
                            .await?
                        }
                        (Some(code), _) => {
                            reply(io, &format!("{code} 5.1.1 <{to}>: mailbox unavailable\r\n"))
                                .await?
                        }
                        (None, SmtpMode::TempFail) => {
                            reply(io, "451 4.3.0 Temporary failure (test sink), try later\r\n")
                                .await?
                        }
                        (None, SmtpMode::PermFail) => {
                            reply(io, "550 5.7.1 Rejected (test sink)\r\n").await?
                        }
                        (None, _) => {
                            rcpt_to.push(to.to_owned());
                            reply(io, "250 2.1.5 OK\r\n").await?;
                        }
                    }
                }
                None => reply(io, "501 5.5.4 Syntax: RCPT TO:<address>\r\n").await?,
            },
            "DATA" => {
                if rcpt_to.is_empty() {
                    reply(io, "503 5.5.1 Need RCPT first\r\n").await?;
                    continue;
                }
                let slow = {
                    let state = shared.lock();
                    rcpt_to
                        .iter()
                        .filter_map(|to| state.slow.get(&to.to_lowercase()).copied())
                        .max()
                };
                if let Some(delay) = slow {
                    tokio::time::sleep(delay).await;
                }
                reply(io, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = Vec::with_capacity(4096);
                loop {
                    if io.buffer().is_empty() {
                        ack_now(io);
                    }
                    if !read_line(io, &mut line).await? {
                        return Ok(()); // client went away mid-DATA: nothing delivered
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                    data.extend_from_slice(unstuffed);
                }
                let from = mail_from.take().unwrap_or_default();
                let to = std::mem::take(&mut rcpt_to);
                if shared.lock().mode == SmtpMode::HoldData {
                    shared.lock().held += 1;
                    while shared.lock().mode == SmtpMode::HoldData {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                // Read the mode again: it may have changed while the data was arriving.
                let mode = shared.lock().mode;
                match mode {
                    SmtpMode::TempFailAfterData => {
                        reply(io, "451 4.3.0 Temporary failure after DATA (test sink)\r\n").await?;
                        continue;
                    }
                    SmtpMode::PermFailAfterData => {
                        reply(io, "554 5.7.1 Rejected after DATA (test sink)\r\n").await?;
                        continue;
                    }
                    _ => {}
                }
                let queued = {
                    let mut state = shared.lock();
                    state.messages.push(Received {
                        mail_from: from,
                        rcpt_to: to,
                        data,
                        at: SystemTime::now(),
                        connection: id,
                    });
                    state.messages.len()
                };
                reply(io, &format!("250 2.0.0 OK queued as {queued}\r\n")).await?;
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                reply(io, "250 2.0.0 OK\r\n").await?;
            }
            "NOOP" => reply(io, "250 2.0.0 OK\r\n").await?,
            "VRFY" => reply(io, "252 2.1.5 Cannot VRFY user\r\n").await?,
            "QUIT" => {
                reply(io, "221 2.0.0 Bye\r\n").await?;
                io.flush().await?;
                return Ok(());
            }
            "STARTTLS" | "AUTH" | "BDAT" => {
                reply(io, "502 5.5.1 Not implemented by the test sink\r\n").await?
            }
            _ => reply(io, "500 5.5.2 Command not recognized\r\n").await?,
        }
    }
}
