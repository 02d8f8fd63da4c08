//! The text of a destruction act: for 152-FZ tenants in the form Roskomnadzor order
//! No. 179 of 28.10.2022 requires (operator; whose data, by an identifier rather than
//! a name, since the name is what was destroyed; categories; information system;
//! method; reason; who destroyed it; when), and in English for the others.

use crate::locale::Locale;
use chrono::{DateTime, Utc};

/// What an act states.
#[derive(Debug, Clone)]
pub struct ActFacts<'a> {
    pub id: &'a str,
    pub operator: &'a str,
    pub subject_ids: &'a [String],
    pub categories: &'a [String],
    pub system: &'a str,
    pub method: &'a str,
    pub reason: &'a str,
    pub actor: &'a str,
    pub status: &'a str,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "  —\n".to_owned();
    }
    items.iter().map(|i| format!("  - {i}\n")).collect()
}

/// The headings of an act in one language.
struct Labels {
    title: &'static str,
    draft: &'static str,
    number: &'static str,
    operator: &'static str,
    system: &'static str,
    subjects: &'static str,
    categories: &'static str,
    method: &'static str,
    reason: &'static str,
    actor: &'static str,
    drawn_up: &'static str,
    destroyed: &'static str,
    not_done: &'static str,
    signature: &'static str,
}

const RU: Labels = Labels {
    title: "АКТ об уничтожении персональных данных",
    draft: "ПРОЕКТ АКТА (предварительный отчёт, уничтожение не выполнялось)",
    number: "№",
    operator: "Оператор",
    system: "Информационная система персональных данных",
    subjects: "Субъекты персональных данных (идентификаторы в информационной системе)",
    categories: "Перечень категорий уничтоженных персональных данных",
    method: "Способ уничтожения",
    reason: "Причина уничтожения",
    actor: "Лицо, уничтожившее персональные данные",
    drawn_up: "Дата составления",
    destroyed: "Дата уничтожения",
    not_done: "не выполнено",
    signature: "Подпись",
};

const EN: Labels = Labels {
    title: "ACT of destruction of personal data",
    draft: "DRAFT ACT (dry-run report; nothing was destroyed)",
    number: "No.",
    operator: "Controller",
    system: "Information system",
    subjects: "Data subjects (identifiers in the system)",
    categories: "Categories of personal data destroyed",
    method: "Method",
    reason: "Reason",
    actor: "Destroyed by",
    drawn_up: "Drawn up",
    destroyed: "Destroyed",
    not_done: "not carried out",
    signature: "Signature",
};

/// The act as plain text, in Russian or English.
pub fn render(facts: &ActFacts<'_>, locale: Locale) -> String {
    let l = match locale {
        Locale::Ru => &RU,
        Locale::En => &EN,
    };
    let when = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| l.not_done.to_owned())
    };
    let title = if facts.status == "proposed" {
        l.draft
    } else {
        l.title
    };
    format!(
        "{title}\n{number} {id}\n\n\
         {operator}: {op}\n\
         {system}: {sys}\n\
         {subjects}:\n{subj}\
         {categories}:\n{cat}\
         {method}: {how}\n\
         {reason}: {why}\n\
         {actor}: {who}\n\
         {drawn_up}: {created}\n\
         {destroyed}: {done}\n\
         {signature}: ____________________\n",
        number = l.number,
        operator = l.operator,
        system = l.system,
        subjects = l.subjects,
        categories = l.categories,
        method = l.method,
        reason = l.reason,
        actor = l.actor,
        drawn_up = l.drawn_up,
        destroyed = l.destroyed,
        signature = l.signature,
        id = facts.id,
        op = facts.operator,
        sys = facts.system,
        subj = list(facts.subject_ids),
        cat = list(facts.categories),
        how = facts.method,
        why = facts.reason,
        who = facts.actor,
        created = when(Some(facts.created_at)),
        done = when(facts.done_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_act_names_everything_the_order_asks_for_and_no_person() {
        let ids = vec!["0190-subject".to_owned()];
        let cats = vec!["contact data".to_owned()];
        let facts = ActFacts {
            id: "act-1",
            operator: "ООО «Ромашка»",
            subject_ids: &ids,
            categories: &cats,
            system: "Assent",
            method: "key destroyed",
            reason: "request",
            actor: "staff:abc",
            status: "done",
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            done_at: DateTime::from_timestamp(1_800_000_100, 0),
        };
        let ru = render(&facts, Locale::Ru);
        for part in [
            "АКТ об уничтожении",
            "ООО «Ромашка»",
            "0190-subject",
            "contact data",
            "Способ уничтожения: key destroyed",
            "Причина уничтожения: request",
            "staff:abc",
            "Дата уничтожения: 2027-01-15",
        ] {
            assert!(ru.contains(part), "{part} missing in\n{ru}");
        }
        let draft = render(
            &ActFacts {
                status: "proposed",
                done_at: None,
                ..facts
            },
            Locale::En,
        );
        assert!(draft.starts_with("DRAFT ACT"), "{draft}");
        assert!(draft.contains("Destroyed: not carried out"), "{draft}");
    }
}
