//! What the bot says, in Russian and English.

use assent_core::consent::{Channel, ConsentStatus, PurposeMeaning};
use assent_core::locale::Locale;
use assent_core::notice::NoticeChannel;
use assent_core::plural::plural;
use assent_core::rights::RequestType;
use chrono::{DateTime, Utc};

/// The chat's chosen language, else Telegram's `language_code`, else Russian (the
/// installation's home audience).
pub fn chat_locale(chosen: Option<&str>, language_code: Option<&str>) -> Locale {
    match chosen.or(language_code) {
        // Anyone whose language is neither reads English more likely than Russian.
        Some(code) => Locale::from_tag(code).unwrap_or(Locale::En),
        None => Locale::Ru,
    }
}

pub fn help(l: Locale) -> &'static str {
    l.pick(
        "Я помогаю управлять согласиями на обработку персональных данных.\n\n\
         /consents — ваши согласия и их отзыв\n\
         /requests — ваши запросы о персональных данных\n\
         /request — подать запрос: доступ, исправление, удаление данных и другие\n\
         /language — язык / language\n\
         /unlink — отвязать этот чат\n\
         /help — эта подсказка\n\n\
         Чтобы привязать чат, откройте ссылку, которую прислала компания.",
        "I help you manage your consents to the processing of personal data.\n\n\
         /consents — your consents, and withdrawing them\n\
         /requests — your personal data requests\n\
         /request — file a request: access, correction, erasure of your data and more\n\
         /language — language / язык\n\
         /unlink — unlink this chat\n\
         /help — this help\n\n\
         To link this chat, open the link the company sent you.",
    )
}

pub fn confirm_link(l: Locale, company: &str, contact: Option<&str>) -> String {
    match (l, contact) {
        (Locale::Ru, Some(c)) => format!("Привязать этот чат к {company} ({c})?"),
        (Locale::Ru, None) => format!("Привязать этот чат к {company}?"),
        (Locale::En, Some(c)) => format!("Link this chat to {company} ({c})?"),
        (Locale::En, None) => format!("Link this chat to {company}?"),
    }
}

pub fn linked(l: Locale, company: &str) -> String {
    match l {
        Locale::Ru => format!(
            "Готово: чат привязан к {company}. Сообщения компании будут приходить сюда. \
             Ваши согласия: /consents"
        ),
        Locale::En => format!(
            "Done: this chat is linked to {company}. The company's messages will come here. \
             Your consents: /consents"
        ),
    }
}

pub fn token_expired(l: Locale) -> &'static str {
    l.pick(
        "Срок действия ссылки истёк. Попросите компанию прислать новую.",
        "This link has expired. Ask the company for a new one.",
    )
}

pub fn token_used(l: Locale) -> &'static str {
    l.pick(
        "Эта ссылка уже использована. Если чат не привязан, попросите компанию прислать новую.",
        "This link has already been used. If the chat is not linked, ask the company for a new one.",
    )
}

pub fn token_unknown(l: Locale) -> &'static str {
    l.pick(
        "Ссылка не распознана. Проверьте, что открыли её целиком, или попросите новую.",
        "This link was not recognised. Check that you opened all of it, or ask for a new one.",
    )
}

pub fn not_linked_yet(l: Locale) -> &'static str {
    l.pick(
        "Этот чат пока не привязан ни к одной компании. Откройте ссылку, которую прислала компания.",
        "This chat is not linked to any company yet. Open the link the company sent you.",
    )
}

pub fn status(l: Locale, s: ConsentStatus) -> &'static str {
    match s {
        ConsentStatus::Granted => l.pick("дано", "given"),
        ConsentStatus::Withdrawn => l.pick("отозвано", "withdrawn"),
        ConsentStatus::Expired => l.pick("истекло", "expired"),
        ConsentStatus::None => l.pick("не давалось", "not given"),
    }
}

pub fn consents_header(l: Locale) -> &'static str {
    l.pick("Ваши согласия", "Your consents")
}

pub fn nothing_to_show(l: Locale) -> &'static str {
    l.pick(
        "Согласий для отображения нет.",
        "There are no consents to show.",
    )
}

pub fn withdraw_button(l: Locale, purpose: &str) -> String {
    match l {
        Locale::Ru => format!("Отозвать: {purpose}"),
        Locale::En => format!("Withdraw: {purpose}"),
    }
}

/// The mark of a consent whose purpose widened since it was given.
pub fn awaiting(l: Locale) -> &'static str {
    l.pick(
        "условия изменились, подтвердите",
        "its terms changed, please confirm",
    )
}

/// What a purpose covers, as a confirmation states it: channels, data, term.
pub fn terms(l: Locale, m: &PurposeMeaning) -> String {
    let mut parts = Vec::new();
    if !m.channels.is_empty() {
        let channels: Vec<&str> = m
            .channels
            .iter()
            .map(|c| match c {
                Channel::Email => l.pick("электронная почта", "email"),
                Channel::Telegram => "Telegram",
                Channel::Sms => "SMS",
            })
            .collect();
        parts.push(format!(
            "{}: {}",
            l.pick("связь", "contact by"),
            channels.join(", ")
        ));
    }
    if !m.data_categories.is_empty() {
        parts.push(format!(
            "{}: {}",
            l.pick("данные", "data"),
            m.data_categories.join(", ")
        ));
    }
    parts.push(match (l, m.consent_term_days) {
        (Locale::Ru, Some(days)) => format!("на {days} дн."),
        (Locale::En, Some(days)) => format!("for {days} days"),
        (_, None) => l.pick("без срока", "with no end date").to_owned(),
    });
    parts.join("; ")
}

/// The sentence a "Confirm" press agrees to (its hash is the evidence).
pub fn confirm_statement(l: Locale, company: &str, purpose: &str, terms: &str) -> String {
    match l {
        Locale::Ru => format!(
            "Я даю согласие {company} на обработку моих персональных данных для цели «{purpose}» на новых условиях: {terms}."
        ),
        Locale::En => format!(
            "I consent to {company} processing my personal data for “{purpose}” on its new terms: {terms}."
        ),
    }
}

pub fn terms_changed(l: Locale) -> &'static str {
    l.pick(
        "Условия снова изменились. Откройте /consents, чтобы увидеть новые.",
        "The terms changed again. Open /consents to see the new ones.",
    )
}

pub fn confirm_button(l: Locale, purpose: &str) -> String {
    match l {
        Locale::Ru => format!("Подтвердить: {purpose}"),
        Locale::En => format!("Confirm: {purpose}"),
    }
}

/// The answer to a confirmation of a widened consent, with its receipt.
pub fn confirmed(
    l: Locale,
    company: &str,
    purpose: &str,
    version: i32,
    receipt_id: &str,
    at: DateTime<Utc>,
) -> String {
    let at = at.format("%Y-%m-%d %H:%M UTC");
    match l {
        Locale::Ru => format!(
            "✅ Согласие подтверждено на новых условиях.\nКомпания: {company}\nЦель: {purpose} \
             (редакция {version})\nКогда: {at}\nКвитанция: {receipt_id}"
        ),
        Locale::En => format!(
            "✅ Consent confirmed on its new terms.\nCompany: {company}\nPurpose: {purpose} \
             (version {version})\nWhen: {at}\nReceipt: {receipt_id}"
        ),
    }
}

pub fn nothing_to_confirm(l: Locale) -> &'static str {
    l.pick(
        "Подтверждать нечего: согласие уже подтверждено или не действует.",
        "There is nothing to confirm: the consent is confirmed already or not in force.",
    )
}

pub fn confirm_withdraw(l: Locale, company: &str, purpose: &str) -> String {
    match l {
        Locale::Ru => format!("Отозвать согласие на «{purpose}», данное {company}?"),
        Locale::En => format!("Withdraw your consent to “{purpose}” from {company}?"),
    }
}

pub fn yes(l: Locale) -> &'static str {
    l.pick("Да", "Yes")
}

pub fn cancel(l: Locale) -> &'static str {
    l.pick("Отмена", "Cancel")
}

pub fn cancelled(l: Locale) -> &'static str {
    l.pick(
        "Отменено, ничего не изменилось.",
        "Cancelled; nothing changed.",
    )
}

pub fn withdrawn(l: Locale, company: &str, purpose: &str) -> String {
    match l {
        Locale::Ru => format!("✅ Согласие на «{purpose}», данное {company}, отозвано."),
        Locale::En => format!("✅ Consent to “{purpose}” withdrawn from {company}."),
    }
}

pub fn receipt(
    l: Locale,
    company: &str,
    purpose: &str,
    receipt_id: Option<&str>,
    at: DateTime<Utc>,
) -> String {
    let at = at.format("%Y-%m-%d %H:%M UTC");
    match (l, receipt_id) {
        (Locale::Ru, Some(id)) => format!(
            "Согласие отозвано.\nКомпания: {company}\nЦель: {purpose}\nКогда: {at}\n\
             Квитанция: {id}\nСообщения с этой целью больше не придут."
        ),
        (Locale::Ru, None) => format!(
            "Возражение записано.\nКомпания: {company}\nЦель: {purpose}\nКогда: {at}\n\
             Сообщения с этой целью больше не придут."
        ),
        (Locale::En, Some(id)) => format!(
            "Consent withdrawn.\nCompany: {company}\nPurpose: {purpose}\nWhen: {at}\n\
             Receipt: {id}\nYou will get no more messages for this purpose."
        ),
        (Locale::En, None) => format!(
            "Objection recorded.\nCompany: {company}\nPurpose: {purpose}\nWhen: {at}\n\
             You will get no more messages for this purpose."
        ),
    }
}

pub fn not_withdrawable(l: Locale) -> &'static str {
    l.pick(
        "Это согласие уже не действует, отзывать нечего.",
        "This consent is no longer in force; there is nothing to withdraw.",
    )
}

pub fn refused(l: Locale) -> &'static str {
    l.pick(
        "Эта кнопка больше не действует. Откройте /consents заново.",
        "This button no longer works. Open /consents again.",
    )
}

pub fn failed(l: Locale) -> &'static str {
    l.pick(
        "Не получилось. Попробуйте ещё раз чуть позже.",
        "Something went wrong. Please try again shortly.",
    )
}

pub fn no_requests(l: Locale) -> &'static str {
    l.pick(
        "Запросов о персональных данных пока нет. Чтобы получить доступ к своим данным, \
         исправить или удалить их, подайте запрос: /request. Компания ответит в установленный \
         законом срок.",
        "You have no personal data requests yet. To see, correct or erase your data, file a \
         request: /request. The company will answer within the legal deadline.",
    )
}

fn request_type(l: Locale, kind: &str) -> &'static str {
    match kind {
        "access" => l.pick("доступ к данным", "access to data"),
        "portability" => l.pick("выгрузка данных", "copy of data"),
        "rectification" => l.pick("исправление данных", "correction of data"),
        "restriction" => l.pick("ограничение обработки", "restriction of processing"),
        "objection" => l.pick("возражение", "objection"),
        "anonymisation" => l.pick("обезличивание", "anonymisation"),
        "erasure" => l.pick("удаление данных", "erasure"),
        "withdraw_all" => l.pick("отзыв всех согласий", "withdrawal of all consents"),
        _ => l.pick("запрос", "request"),
    }
}

fn request_status(l: Locale, status: &str) -> &'static str {
    match status {
        "received" => l.pick("получен", "received"),
        "awaiting_verification" => l.pick("ждёт подтверждения личности", "awaiting identity check"),
        "verified" => l.pick("принят", "accepted"),
        "in_progress" => l.pick("в работе", "in progress"),
        "extended" => l.pick("в работе, срок продлён", "in progress, deadline extended"),
        "completed" => l.pick("выполнен", "done"),
        "rejected" => l.pick("отклонён", "refused"),
        _ => "",
    }
}

/// One line per request: what, since when, where it is and, while open, by when.
pub fn request_line(
    l: Locale,
    kind: &str,
    status: &str,
    received: DateTime<Utc>,
    due: DateTime<Utc>,
    open: bool,
    tz: chrono_tz::Tz,
) -> String {
    let received = received.with_timezone(&tz).format("%d.%m.%Y");
    let due = due.with_timezone(&tz).format("%d.%m.%Y");
    let what = request_type(l, kind);
    let state = request_status(l, status);
    match (l, open) {
        (Locale::Ru, true) => format!("• {what} от {received}: {state}, ответ до {due}"),
        (Locale::Ru, false) => format!("• {what} от {received}: {state}"),
        (Locale::En, true) => format!("• {what} of {received}: {state}, answer by {due}"),
        (Locale::En, false) => format!("• {what} of {received}: {state}"),
    }
}

pub fn choose_language(l: Locale) -> &'static str {
    l.pick("Выберите язык:", "Choose a language:")
}

pub fn language_set(l: Locale) -> &'static str {
    l.pick("Язык: русский.", "Language: English.")
}

pub fn unlink_which(l: Locale) -> &'static str {
    l.pick(
        "От какой компании отвязать этот чат?",
        "Which company should this chat be unlinked from?",
    )
}

pub fn unlinked(l: Locale, company: &str) -> String {
    match l {
        Locale::Ru => format!(
            "Чат отвязан от {company}. Сообщения компании сюда больше не придут; \
             ваши согласия не изменились."
        ),
        Locale::En => format!(
            "This chat is unlinked from {company}. Its messages will no longer come here; \
             your consents are unchanged."
        ),
    }
}

pub fn unknown_command(l: Locale) -> &'static str {
    l.pick(
        "Команда не распознана. Список команд: /help",
        "I did not understand that. Commands: /help",
    )
}

pub fn survey_recorded(l: Locale, score: i32) -> String {
    match l {
        Locale::Ru => format!("Спасибо! Ваша оценка {score} записана."),
        Locale::En => format!("Thank you! Your score of {score} is recorded."),
    }
}

pub fn survey_final(l: Locale) -> &'static str {
    l.pick(
        "Ваш ответ уже окончательный и не может быть изменён.",
        "Your answer is final and can no longer be changed.",
    )
}

pub fn survey_closed(l: Locale) -> &'static str {
    l.pick(
        "Опрос завершён, ответы больше не принимаются.",
        "This survey has closed and no longer takes answers.",
    )
}

pub fn ask_comment(l: Locale, question: &str) -> String {
    match l {
        Locale::Ru => format!("{question}\nНапишите ответ одним сообщением, если хотите."),
        Locale::En => format!("{question}\nReply in one message if you like."),
    }
}

pub fn comment_saved(l: Locale) -> &'static str {
    l.pick("Спасибо за комментарий!", "Thank you for your comment!")
}

pub fn survey_refused(l: Locale) -> &'static str {
    l.pick(
        "Этот опрос недоступен в этом чате.",
        "This survey is not available in this chat.",
    )
}

pub fn file_request_button(l: Locale) -> &'static str {
    l.pick("Подать запрос", "File a request")
}

/// The label of a request type on its button.
pub fn request_type_button(l: Locale, kind: RequestType) -> &'static str {
    match kind {
        RequestType::Access => l.pick("Какие мои данные у вас есть", "What data you hold on me"),
        RequestType::Portability => l.pick("Копия моих данных", "A copy of my data"),
        RequestType::Rectification => l.pick("Исправить мои данные", "Correct my data"),
        RequestType::Restriction => l.pick("Ограничить обработку", "Restrict processing"),
        RequestType::Objection => l.pick("Возразить против обработки", "Object to processing"),
        RequestType::Anonymisation => l.pick("Обезличить мои данные", "Anonymise my data"),
        RequestType::Erasure => l.pick("Удалить мои данные", "Erase my data"),
        RequestType::WithdrawAll => l.pick("Отозвать все согласия", "Withdraw all consents"),
    }
}

pub fn request_which_company(l: Locale) -> &'static str {
    l.pick(
        "В какую компанию подать запрос?",
        "Which company is the request for?",
    )
}

pub fn request_which_type(l: Locale, company: &str) -> String {
    match l {
        Locale::Ru => format!("Что вы просите у {company}?"),
        Locale::En => format!("What do you ask {company} for?"),
    }
}

/// The type menu after the press, without its buttons.
pub fn request_chosen(l: Locale, kind: RequestType, company: &str) -> String {
    let what = request_type(l, kind.as_str());
    match l {
        Locale::Ru => format!("Запрос в {company}: {what}."),
        Locale::En => format!("Request to {company}: {what}."),
    }
}

fn day(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%d.%m.%Y").to_string()
}

/// Where the one-time code of a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeNote {
    /// A new code, to the subject's email or to the linked chat.
    Sent(NoticeChannel),
    /// The code sent earlier still works.
    Earlier,
    /// No code to send here.
    None,
}

fn code_note(l: Locale, note: CodeNote, new: bool) -> &'static str {
    match (note, new) {
        (CodeNote::Sent(NoticeChannel::Telegram), true) => l.pick(
            "\nМы отправили одноразовый код в этот чат: пришлите его сюда, чтобы подтвердить, \
             что это вы.",
            "\nWe sent a one-time code to this chat: send it here to confirm it is you.",
        ),
        (CodeNote::Sent(NoticeChannel::Telegram), false) => l.pick(
            "\nМы отправили новый одноразовый код в этот чат: пришлите его сюда, чтобы \
             подтвердить, что это вы.",
            "\nWe sent a new one-time code to this chat: send it here to confirm it is you.",
        ),
        (CodeNote::Sent(_), true) => l.pick(
            "\nМы отправили одноразовый код на вашу почту: пришлите его сюда, чтобы подтвердить, \
             что это вы.",
            "\nWe sent a one-time code to your email: send it here to confirm it is you.",
        ),
        (CodeNote::Sent(_), false) => l.pick(
            "\nМы отправили новый одноразовый код на вашу почту: пришлите его сюда, чтобы \
             подтвердить, что это вы.",
            "\nWe sent a new one-time code to your email: send it here to confirm it is you.",
        ),
        (CodeNote::Earlier, _) => l.pick(
            "\nПришлите сюда одноразовый код, который мы вам отправили, чтобы подтвердить, \
             что это вы.",
            "\nSend here the one-time code we sent you to confirm it is you.",
        ),
        (CodeNote::None, _) => "",
    }
}

/// The reply to a request filed in the chat.
pub fn request_filed(
    l: Locale,
    kind: &str,
    company: &str,
    due: DateTime<Utc>,
    tz: chrono_tz::Tz,
    note: CodeNote,
) -> String {
    let what = request_type(l, kind);
    let due = day(due, tz);
    let note = code_note(l, note, true);
    match l {
        Locale::Ru => format!("Запрос подан в {company}: {what}. Ответ до {due}.{note}"),
        Locale::En => format!("Request filed at {company}: {what}. Answer by {due}.{note}"),
    }
}

/// The reply when the same request is already open: its deadline is the one that runs.
pub fn request_already_open(
    l: Locale,
    kind: &str,
    company: &str,
    due: DateTime<Utc>,
    tz: chrono_tz::Tz,
    note: CodeNote,
) -> String {
    let what = request_type(l, kind);
    let due = day(due, tz);
    let note = code_note(l, note, false);
    match l {
        Locale::Ru => {
            format!("Такой запрос в {company} уже в работе: {what}. Ответ до {due}.{note}")
        }
        Locale::En => format!(
            "This request to {company} is already being handled: {what}. Answer by {due}.{note}"
        ),
    }
}

pub fn code_right(
    l: Locale,
    kind: &str,
    company: &str,
    due: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> String {
    let what = request_type(l, kind);
    let due = day(due, tz);
    match l {
        Locale::Ru => {
            format!("✅ Подтверждено, это вы. Запрос в {company}: {what}. Ответ до {due}.")
        }
        Locale::En => {
            format!("✅ Confirmed, it is you. Request to {company}: {what}. Answer by {due}.")
        }
    }
}

pub fn code_wrong(l: Locale, attempts_left: i32) -> String {
    let n = i64::from(attempts_left);
    match (l, attempts_left) {
        (Locale::Ru, 0) => "Неверный код, попыток больше нет. Подайте запрос заново через \
                          полчаса: /request"
            .into(),
        (Locale::En, 0) => "Wrong code, no attempts left. File the request again in half an \
                          hour: /request"
            .into(),
        (Locale::Ru, _) => format!(
            "Неверный код, {} {attempts_left} {}.",
            plural("ru", n, &["осталась", "осталось", "осталось"]),
            plural("ru", n, &["попытка", "попытки", "попыток"]),
        ),
        (Locale::En, _) => format!(
            "Wrong code, {attempts_left} {} left.",
            plural("en", n, &["attempt", "attempts"]),
        ),
    }
}

pub fn code_expired(l: Locale) -> &'static str {
    l.pick(
        "Срок действия кода истёк. Подайте запрос заново: /request",
        "The code has expired. File the request again: /request",
    )
}

pub fn code_exhausted(l: Locale) -> &'static str {
    l.pick(
        "Слишком много неверных попыток. Подайте запрос заново через полчаса: /request",
        "Too many wrong attempts. File the request again in half an hour: /request",
    )
}

pub fn code_not_needed(l: Locale) -> &'static str {
    l.pick(
        "Этот запрос больше не ждёт кода. Ваши запросы: /requests",
        "This request no longer takes a code. Your requests: /requests",
    )
}

pub fn request_refused(l: Locale) -> &'static str {
    l.pick(
        "Эта кнопка больше не действует. Откройте /request заново.",
        "This button no longer works. Open /request again.",
    )
}

pub fn request_impossible(l: Locale) -> &'static str {
    l.pick(
        "Компания не может принять этот запрос здесь. Обратитесь в неё напрямую.",
        "The company cannot take this request here. Please contact it directly.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_left_take_their_plural_forms() {
        assert_eq!(
            code_wrong(Locale::Ru, 4),
            "Неверный код, осталось 4 попытки."
        );
        assert_eq!(
            code_wrong(Locale::Ru, 1),
            "Неверный код, осталась 1 попытка."
        );
        assert_eq!(
            code_wrong(Locale::Ru, 5),
            "Неверный код, осталось 5 попыток."
        );
        assert_eq!(code_wrong(Locale::En, 1), "Wrong code, 1 attempt left.");
        assert_eq!(code_wrong(Locale::En, 2), "Wrong code, 2 attempts left.");
        assert!(code_wrong(Locale::Ru, 0).contains("/request"));
    }

    #[test]
    fn every_request_type_has_a_label_in_both_languages() {
        for kind in RequestType::ALL {
            for l in [Locale::Ru, Locale::En] {
                assert!(!request_type_button(l, *kind).is_empty());
                assert_ne!(request_type(l, kind.as_str()), request_type(l, "unknown"));
            }
        }
    }
}
