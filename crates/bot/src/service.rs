//! What the bot does with Assent's data, without Telegram: blocking calls on the
//! store, each in one unit of work. Every action that names a subject first checks
//! that the chat is linked to it (callback data is never trusted).

use crate::text::CodeNote;
use assent_core::consent::{ConsentStatus, LegalBasis, Method, PurposeMeaning, PurposeScope};
use assent_core::contact;
use assent_core::crypto::MasterKey;
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemKind;
use assent_core::rights::{
    CODE_ATTEMPTS, CodeCheck, REQUEST_WRONG_CODES, RequestStatus, RequestType,
};
use assent_core::survey::AnswerDecision;
use assent_store::flows::consents::{self, Evidence};
use assent_store::flows::refusal::{self, Confirmed, RefusalRequest};
use assent_store::flows::rights::{self, Intake};
use assent_store::flows::surveying::{self, Answer};
use assent_store::tables::rights_requests;
use assent_store::tables::surveys;
use assent_store::tables::telegram::{self, ChatState, LinkToken};
use assent_store::tables::{notifications, subjects, tenants};
use assent_store::{Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The rights requests a person made to one company.
#[derive(Debug, Clone)]
pub struct CompanyRequests {
    pub company: String,
    pub timezone: chrono_tz::Tz,
    pub requests: Vec<assent_store::tables::rights_requests::Request>,
}

/// A company and, masked, the contact its record of the person holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPreview {
    pub company: String,
    pub contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck<T> {
    Ok(T),
    Expired,
    Used,
    Unknown,
}

/// One purpose of one linked subject, as the bot lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub tenant_id: String,
    pub subject_id: String,
    pub purpose: String,
    /// The scope of the purpose listed, so a button acts on the purpose it named even
    /// where the company's own and the group's share a code. `None` (a notice's
    /// button, menus stored before it existed): the purpose the company sees under
    /// the code, as the send gate does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<PurposeScope>,
    /// For a consent asked to be confirmed: the purpose version whose terms the
    /// list showed, the only one its "Confirm" button agrees to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct ConsentLine {
    pub target: Target,
    pub name_ru: String,
    pub name_en: String,
    pub status: ConsentStatus,
    /// A granted consent: it can be withdrawn here.
    pub withdrawable: bool,
    /// Given before the purpose widened: it can be confirmed here.
    pub awaiting: bool,
    /// What the purpose now covers (shown beside "Confirm").
    pub meaning: PurposeMeaning,
}

#[derive(Debug, Clone)]
pub struct CompanyConsents {
    pub company: String,
    pub tenant_id: String,
    pub subject_id: String,
    pub lines: Vec<ConsentLine>,
}

/// The receipt of a confirmation of a widened consent.
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub company: String,
    pub name_ru: String,
    pub name_en: String,
    pub version: i32,
    pub receipt_id: String,
    pub at: DateTime<Utc>,
}

/// The receipt of a withdrawal, sent back to the person.
#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub company: String,
    pub name_ru: String,
    pub name_en: String,
    /// The consent receipt; `None` for an objection (no consent event).
    pub receipt_id: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The chat is not linked to that subject (a forged or stale button).
    #[error("this chat is not linked to that record")]
    NotLinked,
    #[error("that consent is not given, so there is nothing to withdraw")]
    NotWithdrawable,
    #[error("that consent is confirmed already or not in force")]
    NothingToConfirm,
    /// The purpose changed again after the list was shown.
    #[error("the terms changed again since they were shown")]
    TermsChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The numbered buttons of the last menu shown in a chat (callback data carries only
/// the number: ids would not fit in 64 bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Menu {
    /// Changes with every menu shown, so a button of an older one is refused rather
    /// than acting on whatever now has its number.
    pub id: String,
    pub targets: Vec<Target>,
    /// The survey invitation whose follow-up question the next plain message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_comment: Option<AwaitingComment>,
    /// The rights request whose one-time code the next six-digit message is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_code: Option<AwaitingCode>,
}

/// A rights request filed in the chat, waiting for its one-time code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingCode {
    pub tenant_id: String,
    pub request_id: String,
    /// After this a six-digit message is a message again, not a code.
    pub until: DateTime<Utc>,
}

/// How long the bot takes a six-digit message as the code of a request filed here
/// (the code's own lifetime).
pub const CODE_WAIT_MINUTES: i64 = assent_core::rights::CODE_TTL_MINUTES;

/// The actor of a request filed, or a code given, in the chat.
const CHAT_ACTOR: &str = "telegram:chat";

/// A request filed in the chat (or the open one it repeats).
#[derive(Debug, Clone)]
pub struct Filed {
    pub company: String,
    pub timezone: chrono_tz::Tz,
    /// The new request, or the open one of the same type this one repeats: its
    /// deadline is the one that runs.
    pub request: rights_requests::Request,
    pub duplicate: bool,
    pub code: CodeNote,
}

/// What became of a code sent in the chat.
#[derive(Debug, Clone)]
pub enum CodeAnswer {
    /// Verified: the request's type and deadline, for the reply.
    Right {
        company: String,
        timezone: chrono_tz::Tz,
        kind: String,
        due_at: DateTime<Utc>,
    },
    Wrong {
        attempts_left: i32,
    },
    Expired,
    Exhausted,
    /// The request takes no code any more (verified by staff, closed, erased).
    NotNeeded,
}

/// A follow-up question asked after a score in the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingComment {
    pub tenant_id: String,
    pub invitation_id: String,
    /// After this the next message is a message again, not a comment.
    pub until: DateTime<Utc>,
}

/// How long the bot takes the next plain message as the follow-up comment.
pub const COMMENT_WAIT_MINUTES: i64 = 60;

/// What became of a score or comment given in the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswered {
    pub decision: AnswerDecision,
    pub tenant_id: String,
    pub invitation_id: String,
    /// The score on file afterwards.
    pub score: Option<i32>,
    /// The follow-up question (ru, en), if the survey asks one.
    pub follow_up: Option<(String, String)>,
}

/// The ids a token names, or what is wrong with it.
fn valid<T>(token: LinkToken) -> Result<(String, String), TokenCheck<T>> {
    match token {
        LinkToken::Valid {
            tenant_id,
            subject_id,
        } => Ok((tenant_id, subject_id)),
        LinkToken::Expired => Err(TokenCheck::Expired),
        LinkToken::Used => Err(TokenCheck::Used),
        LinkToken::Unknown => Err(TokenCheck::Unknown),
    }
}

#[derive(Clone)]
pub struct BotService {
    store: Store,
    master: Arc<MasterKey>,
}

impl BotService {
    pub fn new(store: Store, master: Arc<MasterKey>) -> Self {
        Self { store, master }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn tenant_keys(&self, tenant_id: &str) -> TenantKeys {
        TenantKeys::derive(&self.master, tenant_id)
    }

    fn company(&self, tenant_id: &str) -> StoreResult<String> {
        let tenant = self
            .store
            .system(|c| tenants::find_tenant(c, tenant_id))?
            .ok_or(StoreError::NotFound)?;
        let branding = self.store.read(tenant_id, |c| {
            assent_store::tables::branding::get(c, tenant_id)
        })?;
        Ok(branding.display_name.unwrap_or(tenant.legal_name))
    }

    /// What a `/start` token would link, for the confirmation question.
    pub fn preview(&self, token: &str) -> StoreResult<TokenCheck<LinkPreview>> {
        let now = Utc::now();
        let peeked = self
            .store
            .system(|c| telegram::peek_link_token(c, token, now))?;
        let (tenant_id, subject_id) = match valid(peeked) {
            Ok(ids) => ids,
            Err(problem) => return Ok(problem),
        };
        let keys = self.tenant_keys(&tenant_id);
        let subject = self
            .store
            .read(&tenant_id, |c| subjects::get(c, &keys, &subject_id))?;
        let Some(pii) = subject.and_then(|s| s.pii) else {
            return Ok(TokenCheck::Unknown);
        };
        let contact = pii
            .email
            .as_deref()
            .map(contact::mask_email)
            .or_else(|| pii.phone.as_deref().map(contact::mask_phone));
        Ok(TokenCheck::Ok(LinkPreview {
            company: self.company(&tenant_id)?,
            contact,
        }))
    }

    /// Uses the token and links the chat; the company's name on success.
    pub fn confirm(&self, token: &str, chat_id: i64) -> StoreResult<TokenCheck<String>> {
        let now = Utc::now();
        let peeked = self
            .store
            .system(|c| telegram::peek_link_token(c, token, now))?;
        let tenant_id = match valid(peeked) {
            Ok((tenant_id, _)) => tenant_id,
            Err(problem) => return Ok(problem),
        };
        // Looked up first, so nothing after the commit can fail.
        let company = self.company(&tenant_id)?;
        let outcome = self.store.write(&tenant_id, |c| {
            telegram::consume_and_link(c, token, chat_id, now)
        })?;
        Ok(match valid(outcome) {
            Ok(_) => TokenCheck::Ok(company),
            Err(problem) => problem,
        })
    }

    /// The companies this chat is linked to, with the subject there.
    pub fn links(&self, chat_id: i64) -> StoreResult<Vec<(String, String, String)>> {
        let links = self.store.system(|c| telegram::links_of_chat(c, chat_id))?;
        links
            .into_iter()
            .map(|(t, s)| Ok((self.company(&t)?, t, s)))
            .collect()
    }

    /// The rights requests of every linked subject, newest first per company, with
    /// the tenant's time zone for their deadlines.
    pub fn requests(&self, chat_id: i64) -> StoreResult<Vec<CompanyRequests>> {
        let mut out = Vec::new();
        for (company, tenant_id, subject_id) in self.links(chat_id)? {
            let tenant = self
                .store
                .system(|c| tenants::find_tenant(c, &tenant_id))?
                .ok_or(StoreError::NotFound)?;
            let page = assent_core::page::PageRequest::parse(None, Some(50))
                .map_err(|e| StoreError::invalid(e.to_string()))?;
            let filter = assent_store::tables::rights_requests::ListFilter {
                subject_id: Some(subject_id.clone()),
                ..Default::default()
            };
            let (mut requests, _) = self.store.read(&tenant_id, |c| {
                assent_store::tables::rights_requests::list(c, &filter, &page)
            })?;
            requests.retain(|r| r.duplicate_of.is_none());
            requests.reverse();
            if !requests.is_empty() {
                out.push(CompanyRequests {
                    company,
                    timezone: tenant.timezone.tz(),
                    requests,
                });
            }
        }
        Ok(out)
    }

    /// Every purpose of every linked subject, grouped by company.
    pub fn consents(&self, chat_id: i64) -> StoreResult<Vec<CompanyConsents>> {
        let mut out = Vec::new();
        for (company, tenant_id, subject_id) in self.links(chat_id)? {
            let group = self.store.group_of(&tenant_id)?;
            let states = self.store.read(&tenant_id, |c| {
                consents::subject_states(c, &tenant_id, group.as_deref(), &subject_id, Utc::now())
            });
            let states = match states {
                Ok(s) => s,
                // An erased subject: nothing left to show for that company.
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let lines = states
                .into_iter()
                .filter(|(p, _)| p.meaning.legal_basis == LegalBasis::Consent)
                .map(|(p, s)| {
                    let status = s.as_ref().map_or(ConsentStatus::None, |s| s.state.status);
                    let awaiting = status == ConsentStatus::Granted
                        && s.is_some_and(|s| p.awaits_confirmation(s.purpose_version));
                    ConsentLine {
                        awaiting,
                        target: Target {
                            tenant_id: tenant_id.clone(),
                            subject_id: subject_id.clone(),
                            purpose: p.code.clone(),
                            scope: Some(p.scope),
                            version: awaiting.then_some(p.version),
                        },
                        meaning: p.meaning.clone(),
                        name_ru: p.meaning.name_ru,
                        name_en: p.meaning.name_en,
                        status,
                        withdrawable: status == ConsentStatus::Granted,
                    }
                })
                .collect();
            out.push(CompanyConsents {
                company,
                tenant_id,
                subject_id,
                lines,
            });
        }
        Ok(out)
    }

    /// The purpose's names, after checking the chat may act on the target.
    pub fn describe(
        &self,
        chat_id: i64,
        target: &Target,
    ) -> Result<(String, String, String), ActionError> {
        self.check_linked(chat_id, target)?;
        let group = self.store.group_of(&target.tenant_id)?;
        let purpose = self
            .store
            .read(&target.tenant_id, |c| {
                assent_store::tables::purposes::resolve_in(
                    c,
                    &target.tenant_id,
                    group.as_deref(),
                    target.scope,
                    &target.purpose,
                )
            })?
            .ok_or(StoreError::NotFound)?;
        Ok((
            self.company(&target.tenant_id)?,
            purpose.meaning.name_ru,
            purpose.meaning.name_en,
        ))
    }

    fn check_linked(&self, chat_id: i64, target: &Target) -> Result<(), ActionError> {
        let linked = self
            .store
            .system(|c| telegram::is_linked(c, chat_id, &target.tenant_id, &target.subject_id))?;
        if linked {
            Ok(())
        } else {
            Err(ActionError::NotLinked)
        }
    }

    /// Withdraws a consent by Telegram, as the person; for a purpose on another legal
    /// basis (a subscribed notice's "Unsubscribe" button) records an objection, as the
    /// unsubscribe page does. The link check and the "already withdrawn" check run in
    /// the same unit of work as the write, under the subject's lock.
    pub fn withdraw(&self, chat_id: i64, target: &Target) -> Result<Withdrawal, ActionError> {
        let keys = self.tenant_keys(&target.tenant_id);
        let group = self.store.group_of(&target.tenant_id)?;
        // Looked up first, so nothing after the commit can fail.
        let company = self.company(&target.tenant_id)?;
        let now = Utc::now();
        self.store.write(&target.tenant_id, |c| {
            if !telegram::is_linked(c, chat_id, &target.tenant_id, &target.subject_id)? {
                return Ok(Err(ActionError::NotLinked));
            }
            let request = RefusalRequest {
                subject_id: target.subject_id.clone(),
                purpose_code: target.purpose.clone(),
                scope: target.scope,
                method: Method::Telegram,
                policy_version: None,
                evidence: Evidence::default(),
            };
            let refused =
                refusal::refuse(c, &keys, &target.tenant_id, group.as_deref(), &request, now)?;
            if refused.already {
                return Ok(Err(ActionError::NotWithdrawable));
            }
            let meaning = refused.purpose.meaning;
            let (receipt_id, at) = match refused.recorded {
                Some(recorded) => (
                    Some(recorded.event.receipt_id),
                    recorded.event.recorded_at.and_utc(),
                ),
                None => (None, now),
            };
            Ok(Ok(Withdrawal {
                company: company.clone(),
                name_ru: meaning.name_ru,
                name_en: meaning.name_en,
                receipt_id,
                at,
            }))
        })?
    }

    /// Confirms, as the person, a consent given before its purpose widened: a grant
    /// of the version whose terms the list showed (`target.version`), with its own
    /// receipt and the hash of the sentence shown (`statement`) as evidence. The
    /// link check, the version check and the "nothing to confirm" check run in the
    /// unit of work of the write.
    pub fn confirm_consent(
        &self,
        chat_id: i64,
        target: &Target,
        statement: impl Fn(&str, &PurposeMeaning) -> String,
    ) -> Result<Confirmation, ActionError> {
        let Some(shown) = target.version else {
            return Err(ActionError::NothingToConfirm);
        };
        let keys = self.tenant_keys(&target.tenant_id);
        let group = self.store.group_of(&target.tenant_id)?;
        let company = self.company(&target.tenant_id)?;
        let now = Utc::now();
        self.store.write(&target.tenant_id, |c| {
            if !telegram::is_linked(c, chat_id, &target.tenant_id, &target.subject_id)? {
                return Ok(Err(ActionError::NotLinked));
            }
            let Some(purpose) = assent_store::tables::purposes::resolve_in(
                c,
                &target.tenant_id,
                group.as_deref(),
                target.scope,
                &target.purpose,
            )?
            else {
                return Ok(Err(ActionError::NothingToConfirm));
            };
            let shown_terms = statement(&company, &purpose.meaning);
            let request = RefusalRequest {
                subject_id: target.subject_id.clone(),
                purpose_code: target.purpose.clone(),
                scope: target.scope,
                method: Method::Telegram,
                policy_version: None,
                evidence: Evidence {
                    text_hash: Some(hex::encode(assent_core::crypto::sha256(
                        shown_terms.as_bytes(),
                    ))),
                    ..Evidence::default()
                },
            };
            let recorded = match refusal::confirm(
                c,
                &keys,
                &target.tenant_id,
                group.as_deref(),
                &request,
                shown,
                now,
            )? {
                Confirmed::Done(r) => r,
                Confirmed::Nothing => return Ok(Err(ActionError::NothingToConfirm)),
                Confirmed::TermsChanged => return Ok(Err(ActionError::TermsChanged)),
            };
            Ok(Ok(Confirmation {
                company: company.clone(),
                name_ru: recorded.purpose.meaning.name_ru.clone(),
                name_en: recorded.purpose.meaning.name_en.clone(),
                version: recorded.purpose.version,
                receipt_id: recorded.event.receipt_id.clone(),
                at: recorded.event.recorded_at.and_utc(),
            }))
        })?
    }

    /// Unlinks the chat from one subject (after the link check).
    pub fn unlink(
        &self,
        chat_id: i64,
        tenant_id: &str,
        subject_id: &str,
    ) -> Result<(), ActionError> {
        self.check_linked(
            chat_id,
            &Target {
                tenant_id: tenant_id.into(),
                subject_id: subject_id.into(),
                purpose: String::new(),
                scope: None,
                version: None,
            },
        )?;
        self.store.write(tenant_id, |c| {
            telegram::unlink(c, tenant_id, subject_id, chat_id)
        })?;
        Ok(())
    }

    /// The purpose of a notice sent to this chat, for its "Withdraw" button.
    pub fn notice_target(&self, chat_id: i64, notice_id: &str) -> StoreResult<Option<Target>> {
        for (tenant_id, subject_id) in self.store.system(|c| telegram::links_of_chat(c, chat_id))? {
            let notice = self
                .store
                .read(&tenant_id, |c| notifications::get(c, &tenant_id, notice_id))?;
            if let Some(n) = notice
                && n.subject_id.as_deref() == Some(subject_id.as_str())
                && let Some(purpose) = n.purpose_code
            {
                return Ok(Some(Target {
                    tenant_id,
                    subject_id,
                    purpose,
                    scope: None,
                    version: None,
                }));
            }
        }
        Ok(None)
    }

    /// Records a score (and, with `comment`, the follow-up answer) given in the chat
    /// for an invitation of one of the chat's subjects. The invitation must belong to
    /// a subject this chat is linked to, checked in the unit of work of the write.
    pub fn answer_survey(
        &self,
        chat_id: i64,
        invitation_id: &str,
        score: Option<i32>,
        comment: Option<Option<String>>,
    ) -> Result<SurveyAnswered, ActionError> {
        let now = Utc::now();
        for (tenant_id, subject_id) in self.store.system(|c| telegram::links_of_chat(c, chat_id))? {
            let keys = self.tenant_keys(&tenant_id);
            let answered = self.store.write(&tenant_id, |c| {
                let Some(inv) = surveys::invitation(c, &tenant_id, invitation_id)? else {
                    return Ok(None);
                };
                if inv.subject_id != subject_id
                    || !telegram::is_linked(c, chat_id, &tenant_id, &subject_id)?
                {
                    return Ok(None);
                }
                let survey =
                    surveys::get(c, &tenant_id, &inv.survey_code)?.ok_or(StoreError::NotFound)?;
                let answer = Answer {
                    score,
                    comment: comment.clone(),
                    channel: "telegram",
                };
                let (decision, inv) =
                    surveying::answer(c, &keys, &tenant_id, invitation_id, &answer, now)?;
                Ok(Some(SurveyAnswered {
                    decision,
                    tenant_id: tenant_id.clone(),
                    invitation_id: inv.id,
                    score: inv.score,
                    follow_up: survey.follow_up_ru.zip(survey.follow_up_en),
                }))
            });
            match answered {
                Ok(Some(a)) => return Ok(a),
                Ok(None) => continue,
                // A score off the scale: the button was not ours.
                Err(e) if e.is_kind(ProblemKind::ValidationFailed) => {
                    return Err(ActionError::NotLinked);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ActionError::NotLinked)
    }

    /// Changes the chat's remembered menu and waits in one unit of work.
    fn change_menu(&self, chat_id: i64, change: impl FnOnce(&mut Menu)) -> StoreResult<()> {
        self.store.system(|c| {
            let mut s = telegram::chat_state(c, chat_id)?;
            let mut menu: Menu = s
                .state
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            change(&mut menu);
            s.state = Some(serde_json::to_string(&menu).map_err(StoreError::unreadable)?);
            telegram::put_chat_state(c, chat_id, &s)
        })
    }

    /// Remembers that the next plain message answers a survey's follow-up question.
    pub fn await_comment(
        &self,
        chat_id: i64,
        awaiting: Option<AwaitingComment>,
    ) -> StoreResult<()> {
        self.change_menu(chat_id, |menu| menu.awaiting_comment = awaiting)
    }

    /// Remembers that the next six-digit message is the code of a request filed here.
    pub fn await_code(&self, chat_id: i64, awaiting: Option<AwaitingCode>) -> StoreResult<()> {
        self.change_menu(chat_id, |menu| menu.awaiting_code = awaiting)
    }

    /// The request whose code the chat is waiting for, if any and still in time.
    pub fn awaiting_code(&self, chat_id: i64) -> StoreResult<Option<AwaitingCode>> {
        let awaiting = self
            .chat_state(chat_id)?
            .state
            .as_deref()
            .and_then(|t| serde_json::from_str::<Menu>(t).ok())
            .and_then(|m| m.awaiting_code);
        match awaiting {
            Some(a) if a.until > Utc::now() => Ok(Some(a)),
            Some(_) => {
                self.await_code(chat_id, None)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The follow-up question the chat was asked, if any (and forgets it).
    pub fn take_awaiting_comment(&self, chat_id: i64) -> StoreResult<Option<AwaitingComment>> {
        let awaiting = self
            .chat_state(chat_id)?
            .state
            .as_deref()
            .and_then(|t| serde_json::from_str::<Menu>(t).ok())
            .and_then(|m| m.awaiting_comment);
        if awaiting.is_some() {
            self.await_comment(chat_id, None)?;
        }
        Ok(awaiting.filter(|a| a.until > Utc::now()))
    }

    fn timezone(&self, tenant_id: &str) -> StoreResult<chrono_tz::Tz> {
        let tenant = self
            .store
            .system(|c| tenants::find_tenant(c, tenant_id))?
            .ok_or(StoreError::NotFound)?;
        Ok(tenant.timezone.tz())
    }

    /// Files a rights request of `kind` for the subject a request menu's button stood
    /// for (remembered with the menu): checked again against the chat's own links in
    /// the unit of work of the write. The request gets its legal deadline and
    /// a one-time code goes to the subject's email, else to the linked chat. Filed
    /// again while the first is open, it is recorded as a duplicate and the first
    /// one's deadline runs; if that one still waits for a code that has lapsed (or
    /// was never sent), a new one goes out.
    pub fn file_request(
        &self,
        chat_id: i64,
        target: &Target,
        kind: RequestType,
    ) -> Result<Filed, ActionError> {
        let (tenant_id, subject_id) = (target.tenant_id.clone(), target.subject_id.clone());
        let keys = self.tenant_keys(&tenant_id);
        let group = self.store.group_of(&tenant_id)?;
        // Looked up first, so nothing after the commit can fail.
        let company = self.company(&tenant_id)?;
        let timezone = self.timezone(&tenant_id)?;
        let now = Utc::now();
        let filed = self.store.write(&tenant_id, |c| {
            if !telegram::is_linked(c, chat_id, &tenant_id, &subject_id)? {
                return Ok(Err(ActionError::NotLinked));
            }
            let intake = Intake {
                subject_id: subject_id.clone(),
                kind,
                channel: "telegram".into(),
                received_at: now,
                representative: false,
                details: None,
            };
            let r = rights::file(
                c,
                &keys,
                &tenant_id,
                group.as_deref(),
                intake,
                CHAT_ACTOR,
                now,
            )?;
            let channel = rights::confirmation_channel(c, &keys, &tenant_id, &subject_id)?;
            let Some(first) = r.duplicate_of.as_deref() else {
                let code = match (&r.code, channel) {
                    (Some(_), Some(channel)) => CodeNote::Sent(channel),
                    _ => CodeNote::None,
                };
                return Ok(Ok((r, false, code)));
            };
            let first = rights_requests::get(c, first)?.ok_or(StoreError::NotFound)?;
            let waits = matches!(
                first.status(),
                RequestStatus::Received | RequestStatus::AwaitingVerification
            ) && !first.representative;
            let live =
                first.code.is_some() && first.code_expires_at.is_some_and(|t| t.and_utc() > now);
            let code = match channel {
                _ if !waits => CodeNote::None,
                // Still running: no new code, so wrong answers are not reset.
                _ if live && first.code_failures < CODE_ATTEMPTS => CodeNote::Earlier,
                _ if live => CodeNote::None,
                // Its whole budget of wrong codes is spent: no more codes.
                _ if first.code_failures_total >= REQUEST_WRONG_CODES => CodeNote::None,
                Some(channel) => {
                    let first = rights::send_code(
                        c,
                        &keys,
                        &tenant_id,
                        group.as_deref(),
                        &first.id,
                        CHAT_ACTOR,
                        now,
                    )?;
                    return Ok(Ok((first, true, CodeNote::Sent(channel))));
                }
                None => CodeNote::None,
            };
            Ok(Ok((first, true, code)))
        });
        let (request, duplicate, code) = match filed {
            Ok(outcome) => outcome?,
            // An unknown or erased subject: the link is stale.
            Err(e) if e.is_kind(ProblemKind::ValidationFailed) => {
                return Err(ActionError::NotLinked);
            }
            Err(e) => return Err(e.into()),
        };
        if code != CodeNote::None {
            let awaiting = AwaitingCode {
                tenant_id: tenant_id.clone(),
                request_id: request.id.clone(),
                until: now + chrono::Duration::minutes(CODE_WAIT_MINUTES),
            };
            // The request is filed whatever happens here: the person is told so, and
            // filing again waits for the code of the open request.
            if let Err(error) = self.await_code(chat_id, Some(awaiting)) {
                tracing::error!(%error, "could not wait for the code of a filed request");
            }
        }
        Ok(Filed {
            company,
            timezone,
            request,
            duplicate,
            code,
        })
    }

    /// Checks a code sent in the chat against the request filed here that waits for
    /// it; `None` when the chat waits for no code (the message is a plain message).
    /// A wrong code is counted and committed, then refused. The request must belong
    /// to a subject this chat is still linked to.
    pub fn answer_code(&self, chat_id: i64, code: &str) -> Result<Option<CodeAnswer>, ActionError> {
        let Some(awaiting) = self.awaiting_code(chat_id)? else {
            return Ok(None);
        };
        let tenant_id = awaiting.tenant_id.as_str();
        let keys = self.tenant_keys(tenant_id);
        let company = self.company(tenant_id)?;
        let timezone = self.timezone(tenant_id)?;
        let now = Utc::now();
        let checked = self.store.write(tenant_id, |c| {
            let Some(r) = rights_requests::get(c, &awaiting.request_id)? else {
                return Ok(None);
            };
            if !telegram::is_linked(c, chat_id, tenant_id, &r.subject_id)? {
                return Ok(None);
            }
            // A right code is confirmed to the person by the check itself.
            let (check, r) = rights::check_code(c, &keys, tenant_id, &r.id, code, CHAT_ACTOR, now)?;
            // Committed whatever the answer: a wrong code counts.
            Ok(Some((check, r)))
        });
        let answer = match checked {
            Ok(Some((CodeCheck::Right, request))) => CodeAnswer::Right {
                company,
                timezone,
                due_at: request.due_at.and_utc(),
                kind: request.kind.to_string(),
            },
            Ok(Some((CodeCheck::Wrong { attempts_left }, _))) => {
                CodeAnswer::Wrong { attempts_left }
            }
            Ok(Some((CodeCheck::Expired, _))) => CodeAnswer::Expired,
            Ok(Some((CodeCheck::Exhausted, _))) => CodeAnswer::Exhausted,
            // Gone, unlinked, or no longer waiting for a code (verified by staff).
            Ok(None) | Err(StoreError::NotFound) => CodeAnswer::NotNeeded,
            Err(e) if e.is_kind(ProblemKind::Conflict) => CodeAnswer::NotNeeded,
            Err(e) => return Err(e.into()),
        };
        if !matches!(answer, CodeAnswer::Wrong { .. }) {
            self.await_code(chat_id, None)?;
        }
        Ok(Some(answer))
    }

    /// The bot was blocked or removed: the chat is unreachable for every tenant (not
    /// a withdrawal of anything).
    pub fn chat_blocked(&self, chat_id: i64) -> StoreResult<()> {
        self.in_each_tenant_of(chat_id, telegram::mark_chat_unreachable)
    }

    /// The person wrote to the bot: a chat marked unreachable works again.
    pub fn chat_alive(&self, chat_id: i64) -> StoreResult<()> {
        self.in_each_tenant_of(chat_id, telegram::mark_chat_reachable)
    }

    /// Runs `change(conn, tenant, chat)` in the unit of work of each tenant the chat
    /// is linked to.
    fn in_each_tenant_of(
        &self,
        chat_id: i64,
        change: fn(&mut assent_store::DbConnection, &str, i64) -> StoreResult<usize>,
    ) -> StoreResult<()> {
        let mut tenants: Vec<String> = self
            .store
            .system(|c| telegram::links_of_chat(c, chat_id))?
            .into_iter()
            .map(|(tenant_id, _)| tenant_id)
            .collect();
        // One chat may be linked to several subjects of one tenant.
        tenants.sort();
        tenants.dedup();
        for tenant_id in tenants {
            self.store
                .write(&tenant_id, |c| change(c, &tenant_id, chat_id))?;
        }
        Ok(())
    }

    pub fn chat_state(&self, chat_id: i64) -> StoreResult<ChatState> {
        self.store.system(|c| telegram::chat_state(c, chat_id))
    }

    pub fn set_language(&self, chat_id: i64, language: &str) -> StoreResult<()> {
        self.store.system(|c| {
            let mut s = telegram::chat_state(c, chat_id)?;
            s.language = Some(language.to_owned());
            telegram::put_chat_state(c, chat_id, &s)
        })
    }

    /// Remembers what the numbered buttons just shown stand for. A code awaited for
    /// a request filed here is kept: showing a menu meanwhile does not lose it.
    pub fn remember_menu(&self, chat_id: i64, menu: &Menu) -> StoreResult<()> {
        self.store.system(|c| {
            let mut s = telegram::chat_state(c, chat_id)?;
            let mut menu = menu.clone();
            if menu.awaiting_code.is_none() {
                menu.awaiting_code = s
                    .state
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<Menu>(t).ok())
                    .and_then(|m| m.awaiting_code);
            }
            s.state = Some(serde_json::to_string(&menu).map_err(StoreError::unreadable)?);
            telegram::put_chat_state(c, chat_id, &s)
        })
    }

    /// The target behind button `n` of the last menu, if `menu_id` is that menu.
    pub fn menu_target(
        &self,
        chat_id: i64,
        menu_id: &str,
        n: usize,
    ) -> StoreResult<Option<Target>> {
        let state = self.chat_state(chat_id)?;
        let menu: Menu = state
            .state
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        if menu.id != menu_id {
            return Ok(None);
        }
        Ok(menu.targets.get(n).cloned())
    }

    /// Webhook mode: `false` when this update id was handled before.
    pub fn first_sight(&self, update_id: i64) -> StoreResult<bool> {
        self.store
            .system(|c| telegram::first_sight_of_update(c, update_id))
    }
}
