//! The text of a destruction act: for 152-FZ tenants in the form Roskomnadzor order
//! No. 179 of 28.10.2022 requires (operator; whose data, by an identifier rather than
//! a name, since the name is what was destroyed; categories; information system;
//! method; reason; who destroyed it; when), and in English for the others.

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

/// The act as plain text, in Russian (`ru`) or English.
pub fn render(facts: &ActFacts<'_>, russian: bool) -> String {
    let when = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| {
                if russian {
                    "не выполнено".into()
                } else {
                    "not carried out".into()
                }
            })
    };
    if russian {
        let title = if facts.status == "proposed" {
            "ПРОЕКТ АКТА (предварительный отчёт, уничтожение не выполнялось)"
        } else {
            "АКТ об уничтожении персональных данных"
        };
        format!(
            "{title}\n№ {id}\n\n\
             Оператор: {op}\n\
             Информационная система персональных данных: {sys}\n\
             Субъекты персональных данных (идентификаторы в информационной системе):\n{subj}\
             Перечень категорий уничтоженных персональных данных:\n{cat}\
             Способ уничтожения: {method}\n\
             Причина уничтожения: {reason}\n\
             Лицо, уничтожившее персональные данные: {actor}\n\
             Дата составления: {created}\n\
             Дата уничтожения: {done}\n\
             Подпись: ____________________\n",
            id = facts.id,
            op = facts.operator,
            sys = facts.system,
            subj = list(facts.subject_ids),
            cat = list(facts.categories),
            method = facts.method,
            reason = facts.reason,
            actor = facts.actor,
            created = when(Some(facts.created_at)),
            done = when(facts.done_at),
        )
    } else {
        let title = if facts.status == "proposed" {
            "DRAFT ACT (dry-run report; nothing was destroyed)"
        } else {
            "ACT of destruction of personal data"
        };
        format!(
            "{title}\nNo. {id}\n\n\
             Controller: {op}\n\
             Information system: {sys}\n\
             Data subjects (identifiers in the system):\n{subj}\
             Categories of personal data destroyed:\n{cat}\
             Method: {method}\n\
             Reason: {reason}\n\
             Destroyed by: {actor}\n\
             Drawn up: {created}\n\
             Destroyed: {done}\n\
             Signature: ____________________\n",
            id = facts.id,
            op = facts.operator,
            sys = facts.system,
            subj = list(facts.subject_ids),
            cat = list(facts.categories),
            method = facts.method,
            reason = facts.reason,
            actor = facts.actor,
            created = when(Some(facts.created_at)),
            done = when(facts.done_at),
        )
    }
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
        let ru = render(&facts, true);
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
            false,
        );
        assert!(draft.starts_with("DRAFT ACT"), "{draft}");
        assert!(draft.contains("Destroyed: not carried out"), "{draft}");
    }
}
