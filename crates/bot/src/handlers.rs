//! The update handlers: commands, button presses and membership changes.
//!
//! Callback data is at most 64 bytes and never trusted: buttons carry a number into
//! the chat's last menu (stored in Assent's database with a random menu id), and every
//! action checks again that the chat is linked to the subject it names. Every callback
//! query is answered, so the person's client never spins.

use crate::service::{
    ActionError, AwaitingComment, BotService, CodeAnswer, Menu, SurveyAnswered, Target, TokenCheck,
};
use crate::text;
use assent_core::locale::Locale;
use assent_core::rights::RequestType;
use assent_core::survey::AnswerDecision;
use std::sync::Arc;
use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{
    CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, MessageId,
};

/// Below Telegram's 4096 characters, with room for a company heading.
const MESSAGE_CHARS: usize = 3500;
/// Below Telegram's 100 inline buttons per message.
const MESSAGE_BUTTONS: usize = 90;

/// Inline keyboard rows of `(label, callback data)`.
type Rows = Vec<Vec<(String, String)>>;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;
type HandlerResult = Result<(), HandlerError>;

/// The whole tree; `BotService` is injected as `Arc<BotService>`.
pub fn schema() -> UpdateHandler<HandlerError> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_callback_query().endpoint(on_callback))
        .branch(Update::filter_my_chat_member().endpoint(on_membership))
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    svc: &Arc<BotService>,
    f: impl FnOnce(&BotService) -> T + Send + 'static,
) -> Result<T, HandlerError> {
    let svc = svc.clone();
    Ok(tokio::task::spawn_blocking(move || f(&svc)).await?)
}

async fn lang_of(svc: &Arc<BotService>, chat: i64, language_code: Option<String>) -> Locale {
    let chosen = blocking(svc, move |s| {
        s.chat_state(chat).ok().and_then(|c| c.language)
    })
    .await
    .ok()
    .flatten();
    text::chat_locale(chosen.as_deref(), language_code.as_deref())
}

fn keyboard(rows: Rows) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(rows.into_iter().map(|row| {
        row.into_iter()
            .map(|(label, data)| InlineKeyboardButton::callback(label, data))
            .collect::<Vec<_>>()
    }))
}

/// A menu id: 8 random bytes (11 characters), so a button of an older menu never
/// matches a newer one by chance.
fn new_menu_id() -> String {
    assent_core::crypto::b64url(&assent_core::crypto::random_bytes::<8>())
}

async fn on_message(bot: Bot, msg: Message, svc: Arc<BotService>) -> HandlerResult {
    // Only private chats: linked in a group, every member would see and change one
    // person's consents, and the person's notices would go to the group.
    if !msg.chat.is_private() {
        return Ok(());
    }
    let chat = msg.chat.id.0;
    let code = msg.from.as_ref().and_then(|u| u.language_code.clone());
    let lang = lang_of(&svc, chat, code).await;
    let Some(text) = msg.text() else {
        bot.send_message(msg.chat.id, text::unknown_command(lang))
            .await?;
        return Ok(());
    };
    // Writing to the bot makes a chat marked unreachable work again.
    blocking(&svc, move |s| s.chat_alive(chat)).await??;
    let mut words = text.split_whitespace();
    let command = words
        .next()
        .unwrap_or_default()
        .split('@')
        .next()
        .unwrap_or_default();
    match command {
        "/start" => match words.next() {
            Some(token) => start_with_token(&bot, &svc, msg.chat.id, lang, token).await,
            None => {
                bot.send_message(msg.chat.id, text::help(lang)).await?;
                Ok(())
            }
        },
        "/help" => {
            bot.send_message(msg.chat.id, text::help(lang)).await?;
            Ok(())
        }
        "/consents" => show_consents(&bot, &svc, msg.chat.id, lang).await,
        "/requests" => show_requests(&bot, &svc, msg.chat.id, lang).await,
        "/request" => request_menu(&bot, &svc, msg.chat.id, lang).await,
        "/language" => {
            bot.send_message(msg.chat.id, text::choose_language(lang))
                .reply_markup(keyboard(vec![vec![
                    ("Русский".into(), "lang:ru".into()),
                    ("English".into(), "lang:en".into()),
                ]]))
                .await?;
            Ok(())
        }
        "/unlink" => show_unlink(&bot, &svc, msg.chat.id, lang).await,
        _ if looks_like_code(text) && request_code(&bot, &svc, msg.chat.id, lang, text).await? => {
            Ok(())
        }
        _ if !command.starts_with('/')
            && survey_comment(&bot, &svc, msg.chat.id, lang, text).await? =>
        {
            Ok(())
        }
        _ => {
            bot.send_message(msg.chat.id, text::unknown_command(lang))
                .await?;
            Ok(())
        }
    }
}

async fn start_with_token(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
    token: &str,
) -> HandlerResult {
    // Telegram allows 64 characters of [A-Za-z0-9_-]; anything else is not ours.
    let plausible = token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let owned = token.to_owned();
    let check = if plausible {
        blocking(svc, move |s| s.preview(&owned)).await??
    } else {
        TokenCheck::Unknown
    };
    match check {
        TokenCheck::Ok(preview) => {
            bot.send_message(
                chat,
                text::confirm_link(lang, &preview.company, preview.contact.as_deref()),
            )
            .reply_markup(keyboard(vec![vec![
                (text::yes(lang).into(), format!("link:{token}")),
                (text::cancel(lang).into(), "cancel".into()),
            ]]))
            .await?;
        }
        other => {
            bot.send_message(chat, token_problem(lang, &other)).await?;
        }
    }
    Ok(())
}

fn token_problem<T>(lang: Locale, check: &TokenCheck<T>) -> &'static str {
    match check {
        TokenCheck::Expired => text::token_expired(lang),
        TokenCheck::Used => text::token_used(lang),
        _ => text::token_unknown(lang),
    }
}

async fn show_consents(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
) -> HandlerResult {
    let id = chat.0;
    let companies = blocking(svc, move |s| s.consents(id)).await??;
    if companies.is_empty() {
        bot.send_message(chat, text::not_linked_yet(lang)).await?;
        return Ok(());
    }
    let menu_id = format!("c{}", new_menu_id());
    let mut menu = Menu::default();
    // Telegram takes 4096 characters and 100 buttons per message: a long list goes
    // out in several messages, each with the buttons of the lines it shows.
    let mut messages: Vec<(String, Rows)> =
        vec![(format!("{}\n", text::consents_header(lang)), Vec::new())];
    for company in &companies {
        // Each line with the button (if any) that belongs to it.
        let mut lines = vec![(format!("\n{}\n", company.company), None)];
        if company.lines.is_empty() {
            lines.push((format!("  {}\n", text::nothing_to_show(lang)), None));
        }
        for line in &company.lines {
            let name = lang.pick(&line.name_ru, &line.name_en);
            let mut buttons = Vec::new();
            if line.withdrawable {
                let n = menu.targets.len();
                menu.targets.push(line.target.clone());
                if line.awaiting {
                    buttons.push((
                        text::confirm_button(lang, name),
                        format!("cf:{menu_id}:{n}"),
                    ));
                }
                buttons.push((
                    text::withdraw_button(lang, name),
                    format!("w:{menu_id}:{n}"),
                ));
            }
            let status = if line.awaiting {
                format!(
                    "{} ({}: {})",
                    text::status(lang, line.status),
                    text::awaiting(lang),
                    text::terms(lang, &line.meaning)
                )
            } else {
                text::status(lang, line.status).to_owned()
            };
            lines.push((
                format!("  • {name}: {status}\n"),
                (!buttons.is_empty()).then_some(buttons),
            ));
        }
        for (line, button) in lines {
            let (body, rows) = messages.last_mut().expect("one message at least");
            if body.chars().count() + line.chars().count() > MESSAGE_CHARS
                || rows.len() >= MESSAGE_BUTTONS
            {
                messages.push((String::new(), Vec::new()));
            }
            let (body, rows) = messages.last_mut().expect("one message at least");
            body.push_str(&line);
            if let Some(buttons) = button {
                rows.push(buttons);
            }
        }
    }
    menu.id = menu_id;
    blocking(svc, move |s| s.remember_menu(id, &menu)).await??;
    for (body, rows) in messages {
        let mut send = bot.send_message(chat, body);
        if !rows.is_empty() {
            send = send.reply_markup(keyboard(rows));
        }
        send.await?;
    }
    Ok(())
}

async fn show_unlink(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
) -> HandlerResult {
    let id = chat.0;
    let links = blocking(svc, move |s| s.links(id)).await??;
    if links.is_empty() {
        bot.send_message(chat, text::not_linked_yet(lang)).await?;
        return Ok(());
    }
    let menu_id = format!("u{}", new_menu_id());
    let mut menu = Menu {
        id: menu_id.clone(),
        ..Menu::default()
    };
    let mut rows = Vec::new();
    for (n, (company, tenant_id, subject_id)) in links.into_iter().enumerate() {
        menu.targets.push(Target {
            tenant_id,
            subject_id,
            purpose: String::new(),
            scope: None,
            version: None,
        });
        rows.push(vec![(company, format!("u:{menu_id}:{n}"))]);
    }
    rows.push(vec![(text::cancel(lang).into(), "cancel".into())]);
    blocking(svc, move |s| s.remember_menu(id, &menu)).await??;
    bot.send_message(chat, text::unlink_which(lang))
        .reply_markup(keyboard(rows))
        .await?;
    Ok(())
}

/// A button press, decoded: nothing in it is trusted yet.
#[derive(Debug, PartialEq, Eq)]
enum Press<'a> {
    Link(&'a str),
    Cancel,
    AskWithdraw(&'a str, usize),
    Withdraw(&'a str, usize),
    /// "Confirm" beside a consent whose purpose widened: `cf:<menu>:<n>`.
    Confirm(&'a str, usize),
    FromNotice(&'a str),
    Language(&'a str),
    Unlink(&'a str, usize),
    /// A score on a survey invitation: `sv:<invitation id>:<score>`.
    Score(&'a str, i32),
    /// "File a request" under the `/requests` list: `rqn`.
    RequestStart,
    /// The company a request is for, button `n` of request menu `menu`:
    /// `rqc:<menu>:<n>`.
    RequestCompany(&'a str, usize),
    /// File a request of a type with the company behind button `n` of request menu
    /// `menu`: `rq:<menu>:<n>:<type>`. The menu remembers the (company, person) each
    /// number stood for when it was shown, so an unlink meanwhile cannot move it.
    RequestFile(&'a str, usize, RequestType),
}

/// A link number: 1–3 ASCII digits, nothing else (no sign, no spaces).
fn link_number(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The id of a request menu: `r` and the random part, nothing else.
fn request_menu_id(menu: &str) -> Option<&str> {
    (menu.len() > 1
        && menu.starts_with('r')
        && menu
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(menu)
}

fn numbered(rest: &str) -> Option<(&str, usize)> {
    let (menu, n) = rest.split_once(':')?;
    Some((menu, n.parse().ok()?))
}

fn parse_press(data: &str) -> Option<Press<'_>> {
    let (kind, rest) = data.split_once(':').unwrap_or((data, ""));
    match kind {
        "link" if !rest.is_empty() => Some(Press::Link(rest)),
        "cancel" => Some(Press::Cancel),
        "w" => numbered(rest).map(|(m, n)| Press::AskWithdraw(m, n)),
        "wy" => numbered(rest).map(|(m, n)| Press::Withdraw(m, n)),
        "cf" => numbered(rest).map(|(m, n)| Press::Confirm(m, n)),
        "nw" if !rest.is_empty() => Some(Press::FromNotice(rest)),
        "lang" if matches!(rest, "ru" | "en") => Some(Press::Language(rest)),
        "u" => numbered(rest).map(|(m, n)| Press::Unlink(m, n)),
        "rqn" if data == "rqn" => Some(Press::RequestStart),
        "rqc" => {
            let (menu, n) = rest.split_once(':')?;
            Some(Press::RequestCompany(
                request_menu_id(menu)?,
                link_number(n)?,
            ))
        }
        "rq" => {
            let (menu, rest) = rest.split_once(':')?;
            let (n, kind) = rest.split_once(':')?;
            Some(Press::RequestFile(
                request_menu_id(menu)?,
                link_number(n)?,
                kind.parse().ok()?,
            ))
        }
        "sv" => {
            let (invitation, score) = rest.split_once(':')?;
            let score: i32 = score.parse().ok()?;
            (assent_core::id::is_id(invitation) && (0..=10).contains(&score))
                .then_some(Press::Score(invitation, score))
        }
        _ => None,
    }
}

async fn on_callback(bot: Bot, q: CallbackQuery, svc: Arc<BotService>) -> HandlerResult {
    // Answered first and whatever happens next: the client stops its spinner. A
    // failure (a query too old after a backlog) does not stop the press itself.
    if let Err(error) = bot.answer_callback_query(q.id.clone()).await {
        tracing::warn!(%error, "a callback query could not be answered");
    }
    let Some(message) = q.message.as_ref() else {
        return Ok(());
    };
    let chat = message.chat().id;
    let message_id = message.id();
    // Only the person in their own private chat acts on it.
    if !message.chat().is_private() || i64::try_from(q.from.id.0).ok() != Some(chat.0) {
        return Ok(());
    }
    let lang = lang_of(&svc, chat.0, q.from.language_code.clone()).await;
    let Some(press) = q.data.as_deref().and_then(parse_press) else {
        bot.send_message(chat, text::refused(lang)).await?;
        return Ok(());
    };
    let result = handle_press(&bot, &svc, chat, message_id, lang, press).await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "a button press failed");
            bot.send_message(chat, text::failed(lang)).await?;
            Ok(())
        }
    }
}

async fn handle_press(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    message_id: MessageId,
    lang: Locale,
    press: Press<'_>,
) -> HandlerResult {
    let id = chat.0;
    match press {
        Press::Cancel => {
            bot.edit_message_text(chat, message_id, text::cancelled(lang))
                .await?;
        }
        Press::Language(code) => {
            let code = code.to_owned();
            let chosen = text::chat_locale(Some(&code), None);
            blocking(svc, move |s| s.set_language(id, &code)).await??;
            bot.edit_message_text(chat, message_id, text::language_set(chosen))
                .await?;
            bot.send_message(chat, text::help(chosen)).await?;
        }
        Press::Link(token) => {
            let token = token.to_owned();
            let outcome = blocking(svc, move |s| s.confirm(&token, id)).await??;
            let reply = match &outcome {
                TokenCheck::Ok(company) => text::linked(lang, company),
                other => token_problem(lang, other).to_owned(),
            };
            bot.edit_message_text(chat, message_id, reply).await?;
        }
        Press::AskWithdraw(menu, n) => {
            let Some(target) = menu_target(svc, id, menu, 'c', n).await? else {
                bot.send_message(chat, text::refused(lang)).await?;
                return Ok(());
            };
            ask_withdraw(bot, svc, chat, lang, target, menu.to_owned(), n).await?;
        }
        Press::FromNotice(notice_id) => {
            let notice_id = notice_id.to_owned();
            let target = blocking(svc, move |s| s.notice_target(id, &notice_id)).await??;
            let Some(target) = target else {
                bot.send_message(chat, text::refused(lang)).await?;
                return Ok(());
            };
            let menu = Menu {
                id: format!("c{}", new_menu_id()),
                targets: vec![target.clone()],
                ..Menu::default()
            };
            let menu_id = menu.id.clone();
            blocking(svc, move |s| s.remember_menu(id, &menu)).await??;
            ask_withdraw(bot, svc, chat, lang, target, menu_id, 0).await?;
        }
        Press::Withdraw(menu, n) => {
            let Some(target) = menu_target(svc, id, menu, 'c', n).await? else {
                bot.send_message(chat, text::refused(lang)).await?;
                return Ok(());
            };
            match blocking(svc, move |s| s.withdraw(id, &target)).await? {
                Ok(w) => {
                    let name = lang.pick(&w.name_ru, &w.name_en);
                    // The question loses its buttons, so it cannot be pressed again; the
                    // receipt goes out even if that edit fails.
                    if let Err(error) = bot
                        .edit_message_text(
                            chat,
                            message_id,
                            text::withdrawn(lang, &w.company, name),
                        )
                        .await
                    {
                        tracing::warn!(%error, "could not edit the confirmation");
                    }
                    bot.send_message(
                        chat,
                        text::receipt(lang, &w.company, name, w.receipt_id.as_deref(), w.at),
                    )
                    .await?;
                }
                Err(ActionError::NotWithdrawable) => {
                    bot.send_message(chat, text::not_withdrawable(lang)).await?;
                }
                Err(
                    ActionError::NotLinked
                    | ActionError::NothingToConfirm
                    | ActionError::TermsChanged,
                ) => {
                    bot.send_message(chat, text::refused(lang)).await?;
                }
                Err(ActionError::Store(e)) => return Err(e.into()),
            }
        }
        Press::Confirm(menu, n) => {
            let Some(target) = menu_target(svc, id, menu, 'c', n).await? else {
                bot.send_message(chat, text::refused(lang)).await?;
                return Ok(());
            };
            let statement = move |company: &str, m: &assent_core::consent::PurposeMeaning| {
                let name = lang.pick(&m.name_ru, &m.name_en);
                text::confirm_statement(lang, company, name, &text::terms(lang, m))
            };
            match blocking(svc, move |s| s.confirm_consent(id, &target, statement)).await? {
                Ok(c) => {
                    let name = lang.pick(&c.name_ru, &c.name_en);
                    bot.send_message(
                        chat,
                        text::confirmed(lang, &c.company, name, c.version, &c.receipt_id, c.at),
                    )
                    .await?;
                }
                Err(ActionError::NothingToConfirm) => {
                    bot.send_message(chat, text::nothing_to_confirm(lang))
                        .await?;
                }
                Err(ActionError::TermsChanged) => {
                    bot.send_message(chat, text::terms_changed(lang)).await?;
                }
                Err(ActionError::NotLinked | ActionError::NotWithdrawable) => {
                    bot.send_message(chat, text::refused(lang)).await?;
                }
                Err(ActionError::Store(e)) => return Err(e.into()),
            }
        }
        Press::Score(invitation, score) => {
            let invitation = invitation.to_owned();
            let answered = blocking(svc, move |s| {
                s.answer_survey(id, &invitation, Some(score), None)
            })
            .await?;
            survey_reply(bot, svc, chat, lang, answered).await?;
        }
        Press::RequestStart => request_menu(bot, svc, chat, lang).await?,
        Press::RequestCompany(menu, n) => {
            let company = match menu_target(svc, id, menu, 'r', n).await? {
                Some(target) => blocking(svc, move |s| s.links(id))
                    .await??
                    .into_iter()
                    .find(|(_, t, sub)| *t == target.tenant_id && *sub == target.subject_id)
                    .map(|(company, _, _)| company),
                None => None,
            };
            match company {
                Some(company) => request_types(bot, chat, lang, menu, n, &company).await?,
                None => {
                    bot.send_message(chat, text::request_refused(lang)).await?;
                }
            }
        }
        Press::RequestFile(menu, n, kind) => {
            let Some(target) = menu_target(svc, id, menu, 'r', n).await? else {
                bot.send_message(chat, text::request_refused(lang)).await?;
                return Ok(());
            };
            file_request(bot, svc, chat, message_id, lang, target, kind).await?;
        }
        Press::Unlink(menu, n) => {
            let Some(target) = menu_target(svc, id, menu, 'u', n).await? else {
                bot.send_message(chat, text::refused(lang)).await?;
                return Ok(());
            };
            let outcome = blocking(svc, move |s| {
                let company = s
                    .links(id)?
                    .into_iter()
                    .find(|(_, t, sub)| *t == target.tenant_id && *sub == target.subject_id)
                    .map(|(c, _, _)| c);
                Ok::<_, ActionError>(match company {
                    Some(company) => {
                        s.unlink(id, &target.tenant_id, &target.subject_id)?;
                        Some(company)
                    }
                    None => None,
                })
            })
            .await?;
            match outcome {
                Ok(Some(company)) => {
                    bot.edit_message_text(chat, message_id, text::unlinked(lang, &company))
                        .await?;
                }
                Ok(None) | Err(ActionError::NotLinked) => {
                    bot.send_message(chat, text::refused(lang)).await?;
                }
                Err(e) => return Err(e.to_string().into()),
            }
        }
    }
    Ok(())
}

/// The person's rights requests at each linked company, with a "File a request"
/// button under the list when the chat is linked.
async fn show_requests(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
) -> HandlerResult {
    let id = chat.0;
    let (linked, companies) = blocking(svc, move |s| {
        Ok::<_, assent_store::StoreError>((!s.links(id)?.is_empty(), s.requests(id)?))
    })
    .await??;
    let file = keyboard(vec![vec![(
        text::file_request_button(lang).into(),
        "rqn".into(),
    )]]);
    if companies.is_empty() {
        let mut send = bot.send_message(chat, text::no_requests(lang));
        if linked {
            send = send.reply_markup(file);
        }
        send.await?;
        return Ok(());
    }
    let mut message = String::new();
    for c in companies {
        let mut block = format!("{}\n", c.company);
        for r in &c.requests {
            block.push_str(&text::request_line(
                lang,
                r.kind.as_str(),
                r.status.as_str(),
                r.received_at.and_utc(),
                r.due_at.and_utc(),
                r.status().is_open(),
                c.timezone,
            ));
            block.push('\n');
        }
        if message.chars().count() + block.chars().count() > MESSAGE_CHARS {
            bot.send_message(chat, message.trim_end()).await?;
            message.clear();
        }
        message.push_str(&block);
        message.push('\n');
    }
    bot.send_message(chat, message.trim_end())
        .reply_markup(file)
        .await?;
    Ok(())
}

/// `/request`: the types of request at the only linked company, or first the
/// company when the chat is linked at several. The companies are remembered as the
/// chat's menu (like the consent and unlink menus), so a press files where it says.
async fn request_menu(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
) -> HandlerResult {
    let id = chat.0;
    let links = blocking(svc, move |s| s.links(id)).await??;
    if links.is_empty() {
        bot.send_message(chat, text::not_linked_yet(lang)).await?;
        return Ok(());
    }
    let menu = Menu {
        id: format!("r{}", new_menu_id()),
        targets: links
            .iter()
            .take(MESSAGE_BUTTONS)
            .map(|(_, tenant_id, subject_id)| Target {
                tenant_id: tenant_id.clone(),
                subject_id: subject_id.clone(),
                purpose: String::new(),
                scope: None,
                version: None,
            })
            .collect(),
        ..Menu::default()
    };
    let menu_id = menu.id.clone();
    blocking(svc, move |s| s.remember_menu(id, &menu)).await??;
    match links.as_slice() {
        [(company, _, _)] => request_types(bot, chat, lang, &menu_id, 0, company).await?,
        _ => {
            let mut rows: Rows = links
                .into_iter()
                .take(MESSAGE_BUTTONS)
                .enumerate()
                .map(|(n, (company, _, _))| vec![(company, format!("rqc:{menu_id}:{n}"))])
                .collect();
            rows.push(vec![(text::cancel(lang).into(), "cancel".into())]);
            bot.send_message(chat, text::request_which_company(lang))
                .reply_markup(keyboard(rows))
                .await?;
        }
    }
    Ok(())
}

/// The request types, for the company behind button `n` of request menu `menu`.
async fn request_types(
    bot: &Bot,
    chat: ChatId,
    lang: Locale,
    menu: &str,
    n: usize,
    company: &str,
) -> HandlerResult {
    let mut rows: Rows = RequestType::ALL
        .iter()
        .map(|kind| {
            vec![(
                text::request_type_button(lang, *kind).into(),
                format!("rq:{menu}:{n}:{kind}"),
            )]
        })
        .collect();
    rows.push(vec![(text::cancel(lang).into(), "cancel".into())]);
    bot.send_message(chat, text::request_which_type(lang, company))
        .reply_markup(keyboard(rows))
        .await?;
    Ok(())
}

/// Files the request chosen on the type menu, and says where the code went.
async fn file_request(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    message_id: MessageId,
    lang: Locale,
    target: Target,
    kind: RequestType,
) -> HandlerResult {
    let id = chat.0;
    let f = match blocking(svc, move |s| s.file_request(id, &target, kind)).await? {
        Ok(f) => f,
        Err(ActionError::Store(e)) => return Err(e.into()),
        Err(_) => {
            bot.send_message(chat, text::request_refused(lang)).await?;
            return Ok(());
        }
    };
    // The menu loses its buttons, so it is not pressed twice by accident; the reply
    // goes out even if that edit fails.
    if let Err(error) = bot
        .edit_message_text(
            chat,
            message_id,
            text::request_chosen(lang, kind, &f.company),
        )
        .await
    {
        tracing::warn!(%error, "could not edit the request menu");
    }
    let due = f.request.due_at.and_utc();
    let reply = if f.duplicate {
        text::request_already_open(
            lang,
            f.request.kind.as_str(),
            &f.company,
            due,
            f.timezone,
            f.code,
        )
    } else {
        text::request_filed(
            lang,
            f.request.kind.as_str(),
            &f.company,
            due,
            f.timezone,
            f.code,
        )
    };
    bot.send_message(chat, reply).await?;
    Ok(())
}

/// Six ASCII digits, as the one-time codes are.
fn looks_like_code(text_in: &str) -> bool {
    let t = text_in.trim();
    t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit())
}

/// A six-digit message while a request filed here waits for its code is that code.
async fn request_code(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
    text_in: &str,
) -> Result<bool, HandlerError> {
    let id = chat.0;
    let code = text_in.trim().to_owned();
    let answer = match blocking(svc, move |s| s.answer_code(id, &code)).await? {
        Ok(Some(answer)) => answer,
        Ok(None) => return Ok(false),
        Err(ActionError::Store(e)) => return Err(e.into()),
        Err(_) => CodeAnswer::NotNeeded,
    };
    let reply = match answer {
        CodeAnswer::Right {
            company,
            timezone,
            kind,
            due_at,
        } => text::code_right(lang, &kind, &company, due_at, timezone),
        CodeAnswer::Wrong { attempts_left } => text::code_wrong(lang, attempts_left),
        CodeAnswer::Expired => text::code_expired(lang).into(),
        CodeAnswer::Exhausted => text::code_exhausted(lang).into(),
        CodeAnswer::NotNeeded => text::code_not_needed(lang).into(),
    };
    bot.send_message(chat, reply).await?;
    Ok(true)
}

/// Tells the person what became of their score or comment, and asks the survey's
/// follow-up question after a recorded score.
async fn survey_reply(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
    answered: Result<SurveyAnswered, ActionError>,
) -> HandlerResult {
    let a = match answered {
        Ok(a) => a,
        Err(ActionError::Store(e)) => return Err(e.into()),
        Err(_) => {
            bot.send_message(chat, text::survey_refused(lang)).await?;
            return Ok(());
        }
    };
    let score = a.score.unwrap_or_default();
    let reply = match a.decision {
        AnswerDecision::Record | AnswerDecision::Change | AnswerDecision::Same => {
            text::survey_recorded(lang, score)
        }
        AnswerDecision::Settled => text::survey_final(lang).to_owned(),
        AnswerDecision::Expired => text::survey_closed(lang).to_owned(),
    };
    let ask = matches!(a.decision, AnswerDecision::Record | AnswerDecision::Change)
        .then_some(a.follow_up.clone())
        .flatten();
    match ask {
        Some((ru, en)) => {
            let awaiting = AwaitingComment {
                tenant_id: a.tenant_id,
                invitation_id: a.invitation_id,
                until: chrono::Utc::now()
                    + chrono::Duration::minutes(crate::service::COMMENT_WAIT_MINUTES),
            };
            let id = chat.0;
            blocking(svc, move |s| s.await_comment(id, Some(awaiting))).await??;
            let question = lang.pick(&ru, &en);
            bot.send_message(
                chat,
                format!("{reply}\n\n{}", text::ask_comment(lang, question)),
            )
            .await?;
        }
        None => {
            bot.send_message(chat, reply).await?;
        }
    }
    Ok(())
}

/// A plain message after a follow-up question is its answer.
async fn survey_comment(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
    text_in: &str,
) -> Result<bool, HandlerError> {
    let id = chat.0;
    let Some(awaiting) = blocking(svc, move |s| s.take_awaiting_comment(id)).await?? else {
        return Ok(false);
    };
    let comment = assent_core::survey::clean_comment(text_in);
    let answered = blocking(svc, move |s| {
        s.answer_survey(id, &awaiting.invitation_id, None, Some(comment))
    })
    .await?;
    match answered {
        Ok(a)
            if matches!(
                a.decision,
                AnswerDecision::Record | AnswerDecision::Change | AnswerDecision::Same
            ) =>
        {
            bot.send_message(chat, text::comment_saved(lang)).await?;
        }
        other => survey_reply(bot, svc, chat, lang, other).await?,
    }
    Ok(true)
}

/// The target of button `n` of menu `menu`, which must be the chat's current menu
/// and of `kind` (`c` consents, `u` unlink): a button never acts across kinds.
async fn menu_target(
    svc: &Arc<BotService>,
    chat: i64,
    menu: &str,
    kind: char,
    n: usize,
) -> Result<Option<Target>, HandlerError> {
    if !menu.starts_with(kind) {
        return Ok(None);
    }
    let menu = menu.to_owned();
    Ok(blocking(svc, move |s| s.menu_target(chat, &menu, n)).await??)
}

async fn ask_withdraw(
    bot: &Bot,
    svc: &Arc<BotService>,
    chat: ChatId,
    lang: Locale,
    target: Target,
    menu: String,
    n: usize,
) -> HandlerResult {
    let id = chat.0;
    match blocking(svc, move |s| s.describe(id, &target)).await? {
        Ok((company, ru, en)) => {
            bot.send_message(
                chat,
                text::confirm_withdraw(lang, &company, lang.pick(&ru, &en)),
            )
            .reply_markup(keyboard(vec![vec![
                (text::yes(lang).into(), format!("wy:{menu}:{n}")),
                (text::cancel(lang).into(), "cancel".into()),
            ]]))
            .await?;
        }
        Err(ActionError::NotLinked) => {
            bot.send_message(chat, text::refused(lang)).await?;
        }
        Err(e) => return Err(e.to_string().into()),
    }
    Ok(())
}

/// `my_chat_member`: the person blocked the bot (`kicked`) or left; the chat is
/// unreachable until they write again. Consents are not touched.
async fn on_membership(upd: ChatMemberUpdated, svc: Arc<BotService>) -> HandlerResult {
    if upd.new_chat_member.is_banned() || upd.new_chat_member.is_left() {
        let chat = upd.chat.id.0;
        blocking(&svc, move |s| s.chat_blocked(chat)).await??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_is_parsed_strictly() {
        assert_eq!(parse_press("link:abc"), Some(Press::Link("abc")));
        assert_eq!(parse_press("w:1a2b:3"), Some(Press::AskWithdraw("1a2b", 3)));
        assert_eq!(parse_press("wy:1a2b:0"), Some(Press::Withdraw("1a2b", 0)));
        assert_eq!(parse_press("cf:1a2b:2"), Some(Press::Confirm("1a2b", 2)));
        assert_eq!(parse_press("lang:en"), Some(Press::Language("en")));
        assert_eq!(parse_press("cancel"), Some(Press::Cancel));
        let invitation = assent_core::id::new_id();
        assert_eq!(
            parse_press(&format!("sv:{invitation}:10")),
            Some(Press::Score(&invitation, 10))
        );
        assert_eq!(parse_press(&format!("sv:{invitation}:11")), None);
        assert_eq!(parse_press("sv:not-an-id:3"), None);
        for bad in [
            "",
            "link:",
            "w:1a2b",
            "w:1a2b:x",
            "lang:de",
            "drop table",
            "u::",
        ] {
            assert_eq!(parse_press(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_buttons_are_parsed_strictly() {
        let menu = format!("r{}", new_menu_id());
        assert_eq!(parse_press("rqn"), Some(Press::RequestStart));
        assert_eq!(
            parse_press(&format!("rqc:{menu}:0")),
            Some(Press::RequestCompany(&menu, 0))
        );
        assert_eq!(
            parse_press(&format!("rqc:{menu}:12")),
            Some(Press::RequestCompany(&menu, 12))
        );
        assert_eq!(
            parse_press(&format!("rq:{menu}:0:erasure")),
            Some(Press::RequestFile(&menu, 0, RequestType::Erasure))
        );
        // Every type's button parses back to it, within 64 bytes.
        for kind in RequestType::ALL {
            let data = format!("rq:{menu}:999:{kind}");
            assert!(data.len() <= 64, "{data}");
            assert_eq!(
                parse_press(&data),
                Some(Press::RequestFile(&menu, 999, *kind))
            );
        }
        for bad in [
            "rqn:",
            "rqn:0",
            "rqc",
            "rqc:",
            "rqc:x",
            "rqc:-1",
            "rqc:+1",
            "rqc: 1",
            "rqc:0",
            "rqc:rAb:1000",
            "rqc:rAb:x",
            "rqc:r:0",
            "rqc:cAb:0",
            "rqc:rAb:0:erasure",
            "rq",
            "rq:",
            "rq:0:erasure",
            "rq:rAb:0",
            "rq:rAb:0:",
            "rq:rAb::erasure",
            "rq:rAb:x:erasure",
            "rq:rAb:+0:erasure",
            "rq:rAb:-1:erasure",
            "rq:rAb:1000:erasure",
            "rq:rAb:0:Erasure",
            "rq:rAb:0:delete",
            "rq:rAb:0:erasure:1",
            "rq:rAb:0:erasure ",
            "rq:uAb:0:erasure",
            "rq:r A:0:erasure",
        ] {
            assert_eq!(parse_press(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_six_digits_are_taken_for_a_code() {
        for code in ["123456", " 012345\n", "000000"] {
            assert!(looks_like_code(code), "{code:?}");
        }
        for text in [
            "12345",
            "1234567",
            "12 3456",
            "abcdef",
            "１２３４５６",
            "/123456",
            "",
        ] {
            assert!(!looks_like_code(text), "{text:?}");
        }
    }
}

#[cfg(test)]
#[path = "handlers_props.rs"]
mod props;
