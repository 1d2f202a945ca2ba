//! Reading the audit log (CONTRACT.md §7): every entry for the admin, a citizen's own
//! entries for that citizen (`/activity/v1/entries`), and the **Your activity** page that
//! tells them in plain language who used their identity.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, html};
use serde::Serialize;
use serde_json::Value;

use super::approval::signed_in;
use super::error::{ApiError, Problem, Result};
use super::extract::{Admin, ApiQuery};
use super::pages::{PageData, page};
use super::state::AppState;
use crate::domain::audit::{self, DEFAULT_PAGE, Page};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/audit", get(admin_audit))
        .route("/activity/v1/entries", get(activity_entries))
        .route("/activity", get(activity_page))
}

/// One entry as the listing endpoints show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Its index in the log (its leaf number in the Merkle tree).
    pub index: u64,
    /// Standard base64 of the exact bytes that were hashed.
    pub entry: String,
    /// The same bytes decoded: `time`, `event`, `actor`, `subject`, `details`, `salt`.
    #[schema(value_type = Object)]
    pub event: Value,
}

/// A page of entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntriesPage {
    /// The entries, in index order.
    pub entries: Vec<EntryView>,
    /// The `from` of the next page; null after the last entry.
    pub next: Option<u64>,
}

impl From<Page> for EntriesPage {
    fn from(p: Page) -> Self {
        Self {
            entries: p
                .entries
                .into_iter()
                .map(|(index, bytes)| EntryView {
                    index,
                    event: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    entry: STANDARD.encode(bytes),
                })
                .collect(),
            next: p.next,
        }
    }
}

/// A non-negative decimal query parameter, or a precise 400.
pub(super) fn decimal(query: &HashMap<String, String>, name: &str) -> Result<Option<u64>> {
    match query.get(name) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} is out of range"))),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{name} must be a non-negative decimal integer"
        ))),
    }
}

fn paging(query: &HashMap<String, String>) -> Result<(u64, usize)> {
    let from = decimal(query, "from")?.unwrap_or(0);
    let limit =
        decimal(query, "limit")?.map_or(DEFAULT_PAGE, |l| usize::try_from(l).unwrap_or(usize::MAX));
    Ok((from, limit))
}

/// Every entry of the audit log, from index `from`, `limit` at a time (default 100, at most
/// 1000).
#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit", security(("admin" = [])),
    params(("from" = Option<u64>, Query, description = "First index (default 0)"),
           ("limit" = Option<u64>, Query, description = "Page size (default 100, clamped to 1–1000)")),
    responses((status = 200, body = EntriesPage),
              (status = 400, body = Problem, description = "`from` or `limit` is not a non-negative decimal"),
              (status = 401, body = Problem)))]
pub async fn admin_audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<axum::Json<EntriesPage>> {
    let (from, limit) = paging(&query)?;
    let page = state
        .run(move |s| audit::page(&s.store, from, limit))
        .await?;
    Ok(axum::Json(page.into()))
}

/// The signed-in citizen's own entries (those whose `subject` is their id), in index order.
#[utoipa::path(get, path = "/activity/v1/entries", tag = "audit",
    params(("from" = Option<u64>, Query, description = "First index (default 0)"),
           ("limit" = Option<u64>, Query, description = "Page size (default 100, clamped to 1–1000)")),
    responses((status = 200, body = EntriesPage),
              (status = 400, body = Problem, description = "`from` or `limit` is not a non-negative decimal"),
              (status = 401, body = Problem, description = "No citizen session")))]
pub async fn activity_entries(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<Response> {
    let (from, limit) = paging(&query)?;
    let page = state
        .run(move |s| {
            let Some(citizen) = signed_in(s, &headers)? else {
                return Ok(None);
            };
            audit::subject_page(&s.store, &citizen, from, limit).map(Some)
        })
        .await?;
    match page {
        Some(p) => {
            let mut resp = axum::Json(EntriesPage::from(p)).into_response();
            no_store(&mut resp);
            Ok(resp)
        }
        None => Err(ApiError::Unauthorized),
    }
}

/// How many of a citizen's entries the page shows.
const PAGE_ENTRIES: usize = 200;

async fn activity_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let found = state
        .run(move |s| {
            let Some(citizen) = signed_in(s, &headers)? else {
                return Ok(None);
            };
            let entries = audit::latest_of(&s.store, &citizen, PAGE_ENTRIES)?;
            let mut names = HashMap::new();
            let rows: Vec<Row> = entries
                .into_iter()
                .filter_map(|(_, bytes)| serde_json::from_slice::<Value>(&bytes).ok())
                .map(|e| Row::describe(&e, |id| client_name(s, &mut names, id)))
                .collect();
            Ok::<_, crate::domain::DomainError>(Some(rows))
        })
        .await?;
    let Some(rows) = found else {
        return Ok(Redirect::to("/login?return_to=%2Factivity").into_response());
    };
    let mut resp = page(
        StatusCode::OK,
        "Your activity",
        PageData::default(),
        activity_table(&rows),
    );
    no_store(&mut resp);
    Ok(resp)
}

fn no_store(resp: &mut Response) {
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
}

/// A client's display name (its registered name), looked up once per page.
fn client_name(state: &AppState, cache: &mut HashMap<String, String>, id: &str) -> String {
    cache
        .entry(id.to_owned())
        .or_insert_with(|| {
            state
                .store
                .clients()
                .get(id)
                .ok()
                .flatten()
                .map_or_else(|| id.to_owned(), |c| c.name)
        })
        .clone()
}

/// One line of the page.
struct Row {
    time: String,
    what: String,
    details: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn documents(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|docs| {
            docs.iter()
                .map(|d| {
                    format!(
                        "{} (SHA-256 {})",
                        d["name"].as_str().unwrap_or("?"),
                        d["digest"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Row {
    /// The entry in plain language.
    fn describe(e: &Value, mut client: impl FnMut(&str) -> String) -> Self {
        let d = &e["details"];
        let client_of = |client: &mut dyn FnMut(&str) -> String| {
            d["client_id"]
                .as_str()
                .map(&mut *client)
                .unwrap_or_default()
        };
        let (what, details) = match e["event"].as_str().unwrap_or("") {
            audit::event::CITIZEN_REGISTERED => (
                "You were registered by a registration office".to_owned(),
                vec![],
            ),
            audit::event::ENROLMENT_CODE_ISSUED => {
                ("A new enrolment link was issued for you".to_owned(), vec![])
            }
            audit::event::PASSKEY_ADDED => ("You added a passkey".to_owned(), vec![]),
            audit::event::PASSKEY_REVOKED => {
                ("One of your passkeys was revoked".to_owned(), vec![])
            }
            audit::event::LOGIN_SUCCEEDED => ("You signed in with a passkey".to_owned(), vec![]),
            audit::event::LOGIN_FAILED => ("A sign-in with your passkey failed".to_owned(), vec![]),
            audit::event::CONSENT_GIVEN => (
                format!(
                    "You allowed {} to receive your data",
                    client_of(&mut client)
                ),
                vec![format!("Scopes: {}", strings(&d["scopes"]).join(", "))],
            ),
            audit::event::CONSENT_WITHDRAWN => (
                format!("You withdrew your consent for {}", client_of(&mut client)),
                vec![],
            ),
            audit::event::TOKENS_ISSUED => {
                let claims = strings(&d["claims"]);
                (
                    format!("{} received your data", client_of(&mut client)),
                    vec![if claims.is_empty() {
                        "Claims: none".to_owned()
                    } else {
                        format!("Claims: {}", claims.join(", "))
                    }],
                )
            }
            audit::event::GRANT_REVOKED => (
                format!(
                    "Access of {} to your data was ended",
                    client_of(&mut client)
                ),
                vec![],
            ),
            audit::event::OFFICIAL_CREATED => (
                "A signing key was created for you as an official".to_owned(),
                vec![],
            ),
            audit::event::OFFICIAL_REVOKED => {
                ("Your official signing key was revoked".to_owned(), vec![])
            }
            audit::event::SIGN_REQUESTED => (
                "Documents were sent to you for signature".to_owned(),
                documents(&d["documents"]),
            ),
            audit::event::SIGNATURE_PRODUCED => (
                "Documents were signed in your name".to_owned(),
                documents(&d["documents"]),
            ),
            other => (other.to_owned(), vec![]),
        };
        Self {
            time: e["time"]
                .as_str()
                .unwrap_or("")
                .replace('T', " ")
                .replace('Z', " UTC"),
            what,
            details,
        }
    }
}

fn activity_table(rows: &[Row]) -> Markup {
    html! {
        p { "Everything civis recorded about you, newest first: sign-ins, passkeys, consents, \
             which agency received which of your data, and every signature made in your name." }
        @if rows.is_empty() {
            p { "Nothing has been recorded yet." }
        } @else {
            table class="activity" {
                caption { "Events recorded about you" }
                thead { tr {
                    th scope="col" { "When" }
                    th scope="col" { "What happened" }
                    th scope="col" { "Details" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.time) }
                            td { (r.what) }
                            td {
                                @if !r.details.is_empty() {
                                    ul { @for d in &r.details { li { (d) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
