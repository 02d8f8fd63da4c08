//! A fake Telegram Bot API server for tests and benchmarks: point a bot at
//! [`FakeTelegram::api_url`] (`teloxide::Bot::new("123:abc").set_api_url(url)`) and it
//! records what the bot sends, answering as Telegram does, including the failures a
//! sender must handle: a chat that blocked the bot (403), a scripted flood-control 429,
//! and, with [`FakeTelegram::enforce_limits`], a 429 for every message over Telegram's
//! limits (30 messages/s overall, 1 message/s per chat).
//!
//! Methods: `getMe`, `sendMessage`, `editMessageText`, `getUpdates` (always empty, after
//! waiting up to 1 s of its `timeout`), `getWebhookInfo`, and `true` for
//! `answerCallbackQuery`, `deleteMessage`, `sendChatAction`, `setMyCommands`,
//! `deleteMyCommands`, `setWebhook`, `deleteWebhook`, `setChatMenuButton`,
//! `setMyDescription`, `setMyShortDescription`. Others get 404 "Not Found", as from
//! Telegram. Parameters may come as JSON (what teloxide sends) or as a form.
//!
//! The server (actix-web, one worker) runs on a thread of its own, so it works from sync
//! tests, `#[tokio::test]` and `#[actix_web::test]` alike. Dropping it stops it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Map, Value, json};

/// The bot's `username` in `getMe` and in the `from` of sent messages.
pub const BOT_USERNAME: &str = "assent_test_bot";
/// The bot's `first_name`.
pub const BOT_NAME: &str = "Assent Test Bot";
/// Telegram's overall limit: messages per second, all chats together.
pub const OVERALL_PER_SECOND: usize = 30;

/// One message the bot sent (accepted `sendMessage` calls only).
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub chat_id: i64,
    pub text: String,
    /// As sent (a JSON string in a form is parsed).
    pub reply_markup: Option<Value>,
    pub parse_mode: Option<String>,
    /// The `message_id` the fake answered with (1, 2, ... across all chats).
    pub message_id: i64,
    /// All parameters of the call.
    pub params: Value,
    pub at: Instant,
}

/// One API call, whatever its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    pub method: String,
    pub params: Value,
    /// The HTTP status of the answer.
    pub status: u16,
    pub at: Instant,
}

struct State {
    sent: Vec<SentMessage>,
    calls: Vec<ApiCall>,
    next_message_id: i64,
    blocked: HashSet<i64>,
    /// Scripted one-shot 429s, per chat, in order: retry_after seconds.
    rate_limited: HashMap<i64, VecDeque<u32>>,
    enforce_limits: bool,
    slack: Duration,
    too_many_requests: u64,
    /// When accepted messages arrived within the last second, all chats.
    recent: VecDeque<Instant>,
    /// When the last accepted message to each chat arrived.
    last_per_chat: HashMap<i64, Instant>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            sent: Vec::new(),
            calls: Vec::new(),
            next_message_id: 1,
            blocked: HashSet::new(),
            rate_limited: HashMap::new(),
            enforce_limits: false,
            slack: Duration::ZERO,
            too_many_requests: 0,
            recent: VecDeque::new(),
            last_per_chat: HashMap::new(),
        }
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Bot API server. Dropping it stops it.
pub struct FakeTelegram {
    shared: Arc<Shared>,
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl FakeTelegram {
    /// Listens on 127.0.0.1 on a free port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake Telegram");
        let addr = listener.local_addr().expect("fake Telegram address");
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(Arc::clone(&shared));
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("fake-telegram-{}", addr.port()))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                            .default_service(web::to(handle))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .listen(listener)
                    .expect("listen fake Telegram")
                    .run();
                    handle_tx
                        .send(server.handle())
                        .expect("hand over server handle");
                    let _ = server.await;
                })
            })
            .expect("spawn fake Telegram thread");
        let handle = handle_rx.recv().expect("fake Telegram started");
        Self {
            shared,
            addr,
            handle,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`, for `Bot::set_api_url` (teloxide then calls
    /// `http://127.0.0.1:PORT/bot<token>/<method>`).
    pub fn api_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// [`api_url`](Self::api_url) parsed, as `Bot::set_api_url` takes it.
    pub fn url(&self) -> reqwest::Url {
        reqwest::Url::parse(&self.api_url()).expect("fake Telegram URL")
    }

    /// Every accepted `sendMessage`, in arrival order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// The accepted messages to one chat.
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        let state = self.shared.lock();
        state
            .sent
            .iter()
            .filter(|m| m.chat_id == chat_id)
            .cloned()
            .collect()
    }

    /// Every API call, answered or refused, in arrival order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.lock().calls.clone()
    }

    /// Forgets sent messages and calls (scripted faults and limits stay).
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.sent.clear();
        state.calls.clear();
    }

    /// Waits until at least `n` messages have been accepted and returns all of them.
    ///
    /// # Panics
    /// When fewer than `n` have been accepted after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let state = self.shared.lock();
                if state.sent.len() >= n {
                    return state.sent.clone();
                }
                if Instant::now() >= deadline {
                    panic!(
                        "fake Telegram: expected {n} message(s) within {timeout:?}, got {}",
                        state.sent.len()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// From now on, `sendMessage` to `chat_id` gets 403 "Forbidden: bot was blocked by
    /// the user" (teloxide: `ApiError::BotBlocked`).
    pub fn block_chat(&self, chat_id: i64) {
        self.shared.lock().blocked.insert(chat_id);
    }

    pub fn unblock_chat(&self, chat_id: i64) {
        self.shared.lock().blocked.remove(&chat_id);
    }

    /// The next `sendMessage` to `chat_id` gets one 429 with `retry_after` (teloxide:
    /// `RequestError::RetryAfter`). Calls queue up: two calls, two 429s. Not counted in
    /// [`too_many_requests`](Self::too_many_requests).
    pub fn rate_limit_next(&self, chat_id: i64, retry_after_secs: u32) {
        self.shared
            .lock()
            .rate_limited
            .entry(chat_id)
            .or_default()
            .push_back(retry_after_secs);
    }

    /// While on, a `sendMessage` that would make more than 30 accepted messages within
    /// a sliding second (all chats), or more than 1 within a second to one chat, gets
    /// 429 `retry_after: 1` and is counted in [`too_many_requests`](Self::too_many_requests).
    pub fn enforce_limits(&self, on: bool) {
        self.shared.lock().enforce_limits = on;
    }

    /// Shortens the enforced window from 1 s by `slack` (default zero), to forgive the
    /// jitter between a sender's clock and this server's. teloxide's `Throttle` spaces
    /// messages to a chat by at least 1 s when it sends them; they arrived 1.004 s apart
    /// here, so a benchmark that must never see a false 429 sets 50-100 ms.
    pub fn set_limits_slack(&self, slack: Duration) {
        self.shared.lock().slack = slack;
    }

    /// How many 429s [`enforce_limits`](Self::enforce_limits) has answered.
    pub fn too_many_requests(&self) -> u64 {
        self.shared.lock().too_many_requests
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only waits for it.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn bot_id(token: &str) -> i64 {
    token
        .split(':')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or(1)
}

fn bot_user(token: &str) -> Value {
    json!({
        "id": bot_id(token),
        "is_bot": true,
        "first_name": BOT_NAME,
        "username": BOT_USERNAME,
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn chat(chat_id: i64) -> Value {
    if chat_id < 0 {
        json!({ "id": chat_id, "type": "group", "title": "Test group" })
    } else {
        json!({ "id": chat_id, "type": "private", "first_name": "Test" })
    }
}

fn message(
    token: &str,
    message_id: i64,
    chat_id: i64,
    text: &str,
    markup: Option<&Value>,
) -> Value {
    let mut message = json!({
        "message_id": message_id,
        "date": unix_now(),
        "chat": chat(chat_id),
        "from": bot_user(token),
        "text": text,
    });
    // Telegram echoes inline keyboards only.
    if let Some(markup) = markup.filter(|m| m.get("inline_keyboard").is_some()) {
        message["reply_markup"] = markup.clone();
    }
    message
}

fn ok(result: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({ "ok": true, "result": result }))
}

fn error(code: u16, description: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        json!({ "ok": false, "error_code": code, "description": description }),
    )
}

fn too_many(retry_after: u32) -> (StatusCode, Value) {
    (
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after}"),
            "parameters": { "retry_after": retry_after },
        }),
    )
}

/// The call's parameters as a JSON object: a JSON body, or a form whose values that
/// hold JSON (`reply_markup`) are parsed.
fn params(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, String> {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if body.is_empty() {
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).map_err(|e| e.to_string())?;
        return Ok(form_values(query));
    }
    if content_type.starts_with("application/json") {
        match serde_json::from_slice(body).map_err(|e| e.to_string())? {
            Value::Object(map) => Ok(map),
            other => Err(format!("parameters must be an object, not {other}")),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let form: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())?;
        Ok(form_values(form))
    } else {
        Err(format!("unsupported content type {content_type:?}"))
    }
}

fn form_values(pairs: Vec<(String, String)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let value = if k == "reply_markup" || k == "link_preview_options" {
                serde_json::from_str(&v).unwrap_or(Value::String(v))
            } else {
                Value::String(v)
            };
            (k, value)
        })
        .collect()
}

fn int_param(params: &Map<String, Value>, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn str_param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name)?.as_str()
}

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let path = req.path().trim_start_matches('/').to_owned();
    let (token, method) = match path
        .split_once('/')
        .and_then(|(bot, method)| Some((bot.strip_prefix("bot")?, method)))
    {
        Some((token, method)) if !method.contains('/') => (token.to_owned(), method.to_owned()),
        _ => return respond(error(404, "Not Found")),
    };
    let params = params(&req, &body);
    let (status, answer) = match &params {
        Err(e) => error(400, &format!("Bad Request: {e}")),
        Ok(params) => answer(&shared, &token, &method, params).await,
    };
    shared.lock().calls.push(ApiCall {
        method,
        params: Value::Object(params.unwrap_or_default()),
        status: status.as_u16(),
        at: Instant::now(),
    });
    respond((status, answer))
}

fn respond((status, body): (StatusCode, Value)) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

async fn answer(
    shared: &Shared,
    token: &str,
    method: &str,
    params: &Map<String, Value>,
) -> (StatusCode, Value) {
    match method.to_ascii_lowercase().as_str() {
        "getme" => {
            let mut me = bot_user(token);
            me["can_join_groups"] = json!(true);
            me["can_read_all_group_messages"] = json!(false);
            me["supports_inline_queries"] = json!(false);
            me["can_connect_to_business"] = json!(false);
            me["has_main_web_app"] = json!(false);
            ok(me)
        }
        "sendmessage" => send_message(shared, token, params),
        "editmessagetext" => {
            let (Some(chat_id), Some(message_id), Some(text)) = (
                int_param(params, "chat_id"),
                int_param(params, "message_id"),
                str_param(params, "text"),
            ) else {
                return error(400, "Bad Request: message to edit not found");
            };
            ok(message(
                token,
                message_id,
                chat_id,
                text,
                params.get("reply_markup"),
            ))
        }
        "getupdates" => {
            let wait = int_param(params, "timeout").unwrap_or(0).clamp(0, 1) as u64;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            ok(json!([]))
        }
        "getwebhookinfo" => ok(json!({
            "url": "",
            "has_custom_certificate": false,
            "pending_update_count": 0,
        })),
        "answercallbackquery"
        | "deletemessage"
        | "sendchataction"
        | "setmycommands"
        | "deletemycommands"
        | "setwebhook"
        | "deletewebhook"
        | "setchatmenubutton"
        | "setmydescription"
        | "setmyshortdescription" => ok(json!(true)),
        _ => error(404, "Not Found"),
    }
}

fn send_message(shared: &Shared, token: &str, params: &Map<String, Value>) -> (StatusCode, Value) {
    let Some(chat_id) = int_param(params, "chat_id") else {
        return error(400, "Bad Request: chat not found");
    };
    let text = match str_param(params, "text") {
        Some(text) if !text.trim().is_empty() => text,
        _ => return error(400, "Bad Request: message text is empty"),
    };
    let reply_markup = params.get("reply_markup").cloned();

    let now = Instant::now();
    let mut state = shared.lock();
    if state.blocked.contains(&chat_id) {
        return error(403, "Forbidden: bot was blocked by the user");
    }
    if let Some(retry_after) = state
        .rate_limited
        .get_mut(&chat_id)
        .and_then(VecDeque::pop_front)
    {
        return too_many(retry_after);
    }
    let window = Duration::from_secs(1).saturating_sub(state.slack);
    while state
        .recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        state.recent.pop_front();
    }
    if state.enforce_limits {
        let chat_busy = state
            .last_per_chat
            .get(&chat_id)
            .is_some_and(|t| now.duration_since(*t) < window);
        if chat_busy || state.recent.len() >= OVERALL_PER_SECOND {
            state.too_many_requests += 1;
            return too_many(1);
        }
    }
    state.recent.push_back(now);
    state.last_per_chat.insert(chat_id, now);

    let message_id = state.next_message_id;
    state.next_message_id += 1;
    let answer = message(token, message_id, chat_id, text, reply_markup.as_ref());
    state.sent.push(SentMessage {
        chat_id,
        text: text.to_owned(),
        parse_mode: str_param(params, "parse_mode").map(str::to_owned),
        reply_markup,
        message_id,
        params: Value::Object(params.clone()),
        at: now,
    });
    ok(answer)
}
