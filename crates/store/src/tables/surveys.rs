//! Satisfaction surveys (policy 2.2): their definitions and the invitations sent.

use crate::schema::{survey_invitations, surveys};
use crate::{DbConnection, StoreResult};
use assent_core::page::{PageRequest, split_page};
use assent_core::survey::{SurveyKind, Trigger};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The template kind of survey invitations.
pub const INVITATION_KIND: &str = "survey_invitation";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = surveys)]
pub struct Survey {
    pub tenant_id: String,
    pub code: String,
    pub kind: SurveyKind,
    pub question_ru: String,
    pub question_en: String,
    pub follow_up_ru: Option<String>,
    pub follow_up_en: Option<String>,
    pub purpose_code: String,
    pub anonymous: bool,
    pub answer_days: i32,
    pub change_hours: i32,
    pub trigger_delay_hours: Option<i32>,
    pub trigger_period_days: Option<i32>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Survey {
    pub fn kind(&self) -> SurveyKind {
        self.kind
    }

    pub fn trigger(&self) -> Option<Trigger> {
        Some(Trigger {
            delay_hours: self.trigger_delay_hours?,
            period_days: self.trigger_period_days?,
        })
    }

    /// The question in `locale` (Russian unless it is English).
    pub fn question(&self, locale: &str) -> &str {
        if locale.starts_with("en") {
            &self.question_en
        } else {
            &self.question_ru
        }
    }

    pub fn follow_up(&self, locale: &str) -> Option<&str> {
        if locale.starts_with("en") {
            self.follow_up_en.as_deref()
        } else {
            self.follow_up_ru.as_deref()
        }
    }

    /// The `source` of its notices, to cancel them with the survey.
    pub fn source(&self) -> String {
        format!("survey:{}", self.code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = survey_invitations)]
pub struct Invitation {
    pub tenant_id: String,
    pub id: String,
    pub survey_code: String,
    pub subject_id: String,
    pub channel: String,
    pub notice_id: String,
    pub event_key: Option<String>,
    pub send_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub score: Option<i32>,
    pub comment: Option<Vec<u8>>,
    pub answered_channel: Option<String>,
    pub first_answered_at: Option<NaiveDateTime>,
    pub answered_at: Option<NaiveDateTime>,
    pub changes: i32,
    pub settled_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl Invitation {
    /// Answered, settled or not (a settled anonymous answer keeps no time).
    pub fn answered(&self) -> bool {
        self.first_answered_at.is_some() || self.settled_at.is_some()
    }
}

/// What a survey may change after it is created.
#[derive(Debug, Default)]
pub struct SurveyPatch {
    pub question: Option<(String, String)>,
    pub follow_up: Option<Option<(String, String)>>,
    pub active: Option<bool>,
    pub trigger: Option<Option<Trigger>>,
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, code: &str) -> StoreResult<Option<Survey>> {
    Ok(surveys::table
        .find((tenant_id, code))
        .select(Survey::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    page: &PageRequest,
) -> StoreResult<(Vec<Survey>, Option<String>)> {
    let mut query = surveys::table
        .filter(surveys::tenant_id.eq(tenant_id))
        .select(Survey::as_select())
        .order(surveys::code.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(surveys::code.gt(after.clone()));
    }
    Ok(split_page(query.load(conn)?, page.limit, |s| &s.code))
}

pub fn invitation(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<Invitation>> {
    Ok(survey_invitations::table
        .find((tenant_id, id))
        .select(Invitation::as_select())
        .first(conn)
        .optional()?)
}
