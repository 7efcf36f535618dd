//! The page handlers: sign-in and sign-out, the device page, runs and
//! downloads. Each reads the session, asks NetBox or the service, and
//! renders a template; forms are answered with redirects (post, redirect,
//! get), so reloading never runs a command twice.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::run::{self, MAX_NOTES_CHARS, RunAsk};
use super::session::{RunResult, Session, random_token, same_token};
use super::views::{
    Check, CommandRow, CredentialChoice, DevicePage, Fact, Layout, MessagePage, RecentRun, RunForm,
    SignInPage, VariableField, duration_text,
};
use super::{SESSION_COOKIE, UiError, UiState};
use crate::netbox::{Device, JournalListing, NetboxError};
use crate::service::authz::{Action, Caller};
use crate::service::resolve::{DeviceCommands, VariableChoices};
use crate::service::{
    CommandKind, CommandService, CredentialChoice as ServiceCredentials, DeviceCredentials,
    ServiceError,
};

/// The sign-in page's own CSRF cookie (login CSRF, before any session).
const SIGN_IN_COOKIE: &str = "nbt_ui_signin";
/// Recent runs listed under the device.
const RECENT_RUNS: u32 = 10;

type State = web::Data<UiState>;
type Service = web::Data<Arc<CommandService>>;

/// `GET /ui/`: where to go from here.
pub async fn index(state: Option<State>, req: HttpRequest) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let Some(session) = session_of(&state, &req) else {
        return Ok(see_other("/ui/sign-in"));
    };
    let page = MessagePage {
        layout: layout(&state, "Toolkit", Some(&session)).await,
        heading: "Open a device from NetBox".into(),
        tone: "info",
        detail: "This page runs commands on one device at a time.".into(),
        guidance: "Open the device in NetBox and press its Toolkit button.".into(),
        action: Some((
            state.netbox_page("dcim/devices/"),
            "Devices in NetBox".into(),
        )),
    };
    html(StatusCode::OK, page.render()?)
}

/// Where to return after signing in, and a note to show.
#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

/// `GET /ui/sign-in`: the form.
pub async fn sign_in_form(
    state: Option<State>,
    req: HttpRequest,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let next = safe_next(query.next.as_deref());
    if session_of(&state, &req).is_some() {
        return Ok(see_other(&next));
    }
    let notice = match query.notice.as_deref() {
        Some("signed-out") => Some("You are signed out; your NetBox token is revoked.".into()),
        Some("expired") => Some("Your sign-in has ended; sign in again to continue.".into()),
        _ => None,
    };
    sign_in_page(&state, StatusCode::OK, None, notice, next, String::new()).await
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    #[serde(default)]
    next: String,
    username: String,
    password: SecretString,
}

/// `POST /ui/sign-in`: trades the password for a NetBox token and opens a
/// session; a refusal shows NetBox's words.
pub async fn sign_in(
    state: Option<State>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let form = form.into_inner();
    let cookie = req.cookie(SIGN_IN_COOKIE);
    if !cookie.is_some_and(|c| same_token(c.value(), &form.csrf)) {
        return Err(UiError::Csrf);
    }
    let next = safe_next(Some(&form.next));
    let username = form.username.trim().to_string();

    let ttl = state.sessions.ttl();
    let expires = time::OffsetDateTime::now_utc() + ttl;
    let provisioned = state
        .client()
        .provision_token(
            &username,
            &form.password,
            expires,
            "netbox-toolkit page sign-in",
        )
        .await;
    let provisioned = match provisioned {
        Ok(provisioned) => provisioned,
        Err(NetboxError::Forbidden { detail, .. } | NetboxError::Rejected { detail, .. }) => {
            tracing::info!(user = %username, "NetBox refused a sign-in");
            let status = StatusCode::FORBIDDEN;
            return sign_in_page(&state, status, Some(detail), None, next, username).await;
        }
        Err(err) => return Err(err.into()),
    };

    tracing::info!(user = %provisioned.user.username, token_id = provisioned.token.id, "signed in");
    let (id, _) = state.sessions.open(provisioned.user, provisioned.token);
    let mut response = see_other(&next);
    add_cookie(&mut response, session_cookie(&state, id));
    add_cookie(&mut response, expired_cookie(SIGN_IN_COOKIE, "/ui/sign-in"));
    Ok(response)
}

/// Forms of a signed-in person carry only the session's token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /ui/sign-out`: ends the session and revokes its NetBox token.
pub async fn sign_out(
    state: Option<State>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(see_other("/ui/sign-in"));
    };
    if let Some(session) = state.sessions.get(cookie.value()) {
        if !same_token(&session.csrf, &form.csrf) {
            return Err(UiError::Csrf);
        }
        state.sessions.close(cookie.value());
        if let Err(err) = state.client().revoke_token(&session.token).await {
            // The token still ends at its expiry; the person is signed out here either way.
            tracing::warn!(error = %err, token_id = session.token.id, "cannot revoke the token");
        }
        tracing::info!(user = %session.user.username, "signed out");
    }
    let mut response = see_other("/ui/sign-in?notice=signed-out");
    add_cookie(&mut response, expired_cookie(SESSION_COOKIE, "/ui"));
    Ok(response)
}

/// The device page's query: the chosen command and the result to show.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    run: Option<String>,
}

/// `GET /ui/devices/{id}`.
pub async fn device_page(
    state: Option<State>,
    service: Service,
    req: HttpRequest,
    path: web::Path<u64>,
    query: web::Query<DeviceQuery>,
) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let device_id = path.into_inner();
    let Some(session) = session_of(&state, &req) else {
        return Ok(to_sign_in(&req));
    };
    let caller = match caller_of(&state, &service, &req, &session).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let query = query.into_inner();
    let result = query
        .run
        .as_deref()
        .and_then(|id| session.result(id))
        .filter(|r| r.device_id == device_id);
    let view = PageRequest {
        device_id,
        selected: query.command,
        result,
        form_error: None,
    };
    render_device(&state, &service, &session, &caller, view, StatusCode::OK).await
}

/// `POST /ui/devices/{id}/run`: checks the form, runs, and redirects to
/// the page showing the result.
pub async fn run(
    state: Option<State>,
    service: Service,
    req: HttpRequest,
    path: web::Path<u64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let device_id = path.into_inner();
    let Some(session) = session_of(&state, &req) else {
        return Ok(to_sign_in(&req));
    };
    let fields = form.into_inner();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !field("csrf").is_some_and(|t| same_token(&session.csrf, t)) {
        return Err(UiError::Csrf);
    }
    let caller = match caller_of(&state, &service, &req, &session).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let command = field("command").unwrap_or_default().trim().to_string();
    let notes = field("notes")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);

    let refuse = |error: String| PageRequest {
        device_id,
        selected: Some(command.clone()),
        result: None,
        form_error: Some(error),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let token = session.token.api_token().clone();
    let listed = match service.device_commands(token, device_id).await {
        Ok(listed) => listed,
        Err(ServiceError::Netbox(NetboxError::NotFound { .. })) => {
            return not_found_page(&state, Some(&session)).await;
        }
        Err(err) => {
            let view = refuse(format!("{err}. {}", err.guidance()));
            return render_device(&state, &service, &session, &caller, view, status).await;
        }
    };
    let Some(entry) = listed.commands.iter().find(|c| c.command.name == command) else {
        let view = refuse(format!(
            "`{command}` is not a catalogue command for this device."
        ));
        return render_device(&state, &service, &session, &caller, view, status).await;
    };
    let kind = entry.command.kind;
    if let Err(denied) = caller.authorize(Action::from(kind), &listed.device) {
        let view = refuse(format!("{denied}. {}", denied.guidance()));
        return render_device(&state, &service, &session, &caller, view, status).await;
    }
    if kind == CommandKind::Config && field("confirm") != Some("yes") {
        let view = refuse(
            "Tick the confirmation box: this command changes the device's configuration.".into(),
        );
        return render_device(&state, &service, &session, &caller, view, status).await;
    }
    if notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
    {
        let view = refuse(format!(
            "Notes may be at most {MAX_NOTES_CHARS} characters."
        ));
        return render_device(&state, &service, &session, &caller, view, status).await;
    }
    let credentials = match credential_choice(&fields) {
        Ok(choice) => choice,
        Err(error) => {
            return render_device(&state, &service, &session, &caller, refuse(error), status).await;
        }
    };
    let variables = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("var.")?.to_string(), v.trim().to_string())))
        .filter(|(_, v)| !v.is_empty())
        .collect();

    let ask = RunAsk {
        device_id,
        device: listed.device.label(),
        command,
        notes,
        variables,
        credentials,
    };
    let journal_page = |id: u64| state.netbox_page(&format!("extras/journal-entries/{id}/"));
    let result = run::execute(&service, &session, ask, journal_page).await;
    let location = format!(
        "/ui/devices/{device_id}?command={}&run={}#result",
        encode(&result.command),
        result.id
    );
    session.keep(result);
    Ok(see_other(&location))
}

/// `GET /ui/devices/{id}/runs/{run}/output.txt`: a kept result's output.
pub async fn download(
    state: Option<State>,
    req: HttpRequest,
    path: web::Path<(u64, String)>,
) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let (device_id, run) = path.into_inner();
    let Some(session) = session_of(&state, &req) else {
        return Ok(to_sign_in(&req));
    };
    let Some(result) = session
        .result(&run)
        .filter(|r| r.device_id == device_id && r.output.is_some())
    else {
        return not_found_page(&state, Some(&session)).await;
    };
    let name = file_name(&result);
    let body = result.output.unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}

/// `GET /ui/assets/ui.css`.
pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("assets/ui.css"))
}

/// `GET /ui/assets/ui.js`.
pub async fn js() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/ui.js"),
    )
}

/// Anything else under `/ui/`.
pub async fn not_found(state: Option<State>, req: HttpRequest) -> Result<HttpResponse, UiError> {
    let state = state.ok_or(UiError::NotConfigured)?;
    let session = session_of(&state, &req);
    not_found_page(&state, session.as_deref()).await
}

/// A page with no NetBox style, for failures before any state is at hand.
pub fn plain_error_page(detail: &str, guidance: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"UTF-8\"><title>Error | NetBox \
         Toolkit</title></head><body><main><h1>Something went wrong</h1><p>{}</p><p><strong>What \
         to do:</strong> {}</p></main></body></html>",
        escape(detail),
        escape(guidance)
    )
}

/// What the device page should show besides the device.
struct PageRequest {
    device_id: u64,
    selected: Option<String>,
    result: Option<RunResult>,
    form_error: Option<String>,
}

/// Everything the page needs, gathered at once.
async fn render_device(
    state: &UiState,
    service: &CommandService,
    session: &Session,
    caller: &Caller,
    view: PageRequest,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let id = view.device_id;
    let token = session.token.api_token().clone();
    let netbox = state.client();
    let (path, what) = (device_path(id), device_what(id));
    let (device, info, listed, recent, choices, frame) = tokio::join!(
        netbox.get_as::<Device>(&session.token, &path, &what),
        service.device_info(id),
        service.device_commands(token.clone(), id),
        netbox.recent_runs(&session.token, id, RECENT_RUNS),
        selected_choices(service, token, id, view.selected.as_deref()),
        layout(state, "Toolkit", Some(session)),
    );
    let device = match device {
        Ok(device) => device,
        Err(NetboxError::NotFound { .. }) => return not_found_page(state, Some(session)).await,
        Err(err) => return Err(err.into()),
    };
    let ssh_port = info.ok().and_then(|i| i.ssh_port);
    let rate = service.rate_status(&device);

    let rows = command_rows(caller, listed.as_ref().ok(), &view);
    let form = view
        .selected
        .as_deref()
        .and_then(|name| rows.iter().find(|r| r.name == name && r.refused.is_none()))
        .map(|row| run_form(row, choices, service.credential_profiles(caller)));
    let commands_note = match &listed {
        Err(err) => Some(format!("{err}. {}", err.guidance())),
        Ok(l) if l.commands.is_empty() => {
            Some("The catalogue has no command for this platform.".into())
        }
        Ok(_) if form.is_none() => Some("Choose a command to run with its Run… button.".into()),
        Ok(_) => None,
    };
    let platform = listed.as_ref().ok().map(|l| l.platform.clone());
    let checks = readiness(&device, ssh_port, &listed, caller);
    let ready = checks.iter().all(|c| c.ok);

    let page = DevicePage {
        layout: Layout {
            title: format!("{} · Toolkit", device.label()),
            ..frame
        },
        device_id: id,
        device: device.label(),
        device_href: state.netbox_page(&format!("dcim/devices/{id}/")),
        facts: facts(state, &device, ssh_port, platform.as_deref()),
        checks,
        ready,
        rate_text: rate_text(&rate),
        rate_left: rate.remaining,
        commands: rows,
        commands_note,
        form,
        result: view.result,
        recent: recent
            .map(|entries| entries.iter().map(recent_run).collect())
            .map_err(|err| format!("The journal cannot be read with your NetBox account: {err}")),
        form_error: view.form_error,
    };
    html(status, page.render()?)
}

/// The variables of the chosen command with their valid values, if a
/// command is chosen and the caller may see it.
async fn selected_choices(
    service: &CommandService,
    token: crate::netbox::ApiToken,
    device_id: u64,
    selected: Option<&str>,
) -> Vec<VariableChoices> {
    let Some(name) = selected else {
        return Vec::new();
    };
    match service.command_choices(token, device_id, name).await {
        Ok((_, _, variables)) => variables,
        Err(err) => {
            tracing::info!(error = %err, command = name, "no variable choices for the form");
            Vec::new()
        }
    }
}

fn command_rows(
    caller: &Caller,
    listed: Option<&DeviceCommands>,
    view: &PageRequest,
) -> Vec<CommandRow> {
    let Some(listed) = listed else {
        return Vec::new();
    };
    listed
        .commands
        .iter()
        .map(|entry| {
            let c = &entry.command;
            let refused = (!entry.permitted).then(|| {
                caller
                    .authorize(Action::from(c.kind), &listed.device)
                    .err()
                    .map(|denied| denied.to_string())
                    .unwrap_or_else(|| "NetBox does not permit you to run it here".into())
            });
            CommandRow {
                name: c.name.clone(),
                command: c.command.clone(),
                description: c.description.clone(),
                config: c.kind == CommandKind::Config,
                refused,
                select_href: format!(
                    "/ui/devices/{}?command={}#run",
                    view.device_id,
                    encode(&c.name)
                ),
                selected: view.selected.as_deref() == Some(c.name.as_str()),
            }
        })
        .collect()
}

fn run_form(row: &CommandRow, variables: Vec<VariableChoices>, profiles: Vec<String>) -> RunForm {
    let variables = variables
        .into_iter()
        .map(|v| VariableField {
            label: v.variable.name.replace('_', " "),
            help: v.variable.help.clone(),
            required: v.variable.required,
            value: v.variable.default.clone().unwrap_or_default(),
            choices: v
                .choices
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.clone(), c))
                .collect(),
            name: v.variable.name,
        })
        .collect();
    let automatic = CredentialChoice {
        value: "automatic".into(),
        label: "The service's credentials for this device".into(),
        checked: true,
    };
    let named = profiles.into_iter().map(|name| CredentialChoice {
        value: format!("profile:{name}"),
        label: format!("Credential profile \u{201c}{name}\u{201d}"),
        checked: false,
    });
    RunForm {
        name: row.name.clone(),
        command: row.command.clone(),
        config: row.config,
        variables,
        credentials: std::iter::once(automatic).chain(named).collect(),
        typed_credentials: true,
    }
}

/// The credentials the form chose: the service's, or typed in (used for
/// this run only).
fn credential_choice(fields: &[(String, String)]) -> Result<ServiceCredentials, String> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    if let Some(profile) = field("credentials").strip_prefix("profile:") {
        return Ok(ServiceCredentials::Profile(profile.to_string()));
    }
    if field("credentials") != "typed" {
        return Ok(ServiceCredentials::Automatic);
    }
    let username = field("device_username").trim();
    let password = field("device_password");
    if username.is_empty() || password.is_empty() {
        return Err(
            "Type in both the device username and password, or use the service's \
                    credentials."
                .into(),
        );
    }
    Ok(ServiceCredentials::Given(DeviceCredentials {
        username: username.to_string(),
        password: SecretString::from(password.to_string()),
        enable_secret: None,
        source: "typed in on the toolkit page".into(),
    }))
}

fn readiness(
    device: &Device,
    ssh_port: Option<u16>,
    listed: &Result<DeviceCommands, ServiceError>,
    caller: &Caller,
) -> Vec<Check> {
    let platform = match listed {
        Ok(l) => Check {
            label: "Platform supported",
            ok: true,
            detail: format!("{} has a driver", l.platform),
        },
        Err(err) => Check {
            label: "Platform supported",
            ok: false,
            detail: format!("{err}. {}", err.guidance()),
        },
    };
    let address = match device.primary_host() {
        Some(host) => Check {
            label: "Primary IP",
            ok: true,
            detail: format!("{host}, SSH port {}", ssh_port.unwrap_or(22)),
        },
        None => Check {
            label: "Primary IP",
            ok: false,
            detail: "None: assign a primary IPv4 or IPv6 address to the device in NetBox.".into(),
        },
    };
    let may = |action| caller.authorize(action, device).is_ok();
    let rights = match (may(Action::ExecuteShow), may(Action::ExecuteConfig)) {
        (true, true) => (true, "show and configuration commands"),
        (true, false) => (true, "show commands only"),
        (false, true) => (true, "configuration commands only"),
        (false, false) => (
            false,
            "none: ask for a NetBox permission with action execute_show",
        ),
    };
    vec![
        platform,
        address,
        Check {
            label: "Credentials",
            ok: true,
            detail: "The service picks the credentials configured for this device; you may also \
                     type some in for one run."
                .into(),
        },
        Check {
            label: "Your permissions",
            ok: rights.0,
            detail: format!("You may run {}.", rights.1),
        },
    ]
}

fn facts(state: &UiState, device: &Device, port: Option<u16>, platform: Option<&str>) -> Vec<Fact> {
    let named = |r: &Option<crate::netbox::NamedRef>| {
        r.as_ref()
            .and_then(|r| r.name.clone().or_else(|| r.slug.clone()))
            .unwrap_or_else(|| "—".into())
    };
    let site_href = device
        .site
        .as_ref()
        .map(|s| state.netbox_page(&format!("dcim/sites/{}/", s.id)));
    let platform_text = match (named(&device.platform), platform) {
        (name, Some(slug)) if name != slug => format!("{name} (driver {slug})"),
        (name, _) => name,
    };
    let host = device
        .primary_host()
        .map(|h| format!("{h}:{}", port.unwrap_or(22)))
        .unwrap_or_else(|| "—".into());
    vec![
        Fact {
            label: "Name",
            value: device.label(),
            href: Some(state.netbox_page(&format!("dcim/devices/{}/", device.id))),
        },
        Fact {
            label: "Site",
            value: named(&device.site),
            href: site_href,
        },
        Fact {
            label: "Platform",
            value: platform_text,
            href: None,
        },
        Fact {
            label: "Host",
            value: host,
            href: None,
        },
    ]
}

fn rate_text(rate: &crate::service::RateStatus) -> String {
    let window = duration_text(rate.window);
    match rate.retry_after {
        Some(wait) => format!(
            "The limit of {} runs per {window} is reached; the next run is possible in {}.",
            rate.limit,
            duration_text(wait.max(std::time::Duration::from_secs(1)))
        ),
        None => format!(
            "{} of {} runs per {window} left on this device.",
            rate.remaining, rate.limit
        ),
    }
}

fn recent_run(entry: &JournalListing) -> RecentRun {
    let mut lines = entry.comments.lines();
    let summary = lines
        .next()
        .unwrap_or_default()
        .replace("**", "")
        .replace('`', "");
    let requested_by = entry
        .comments
        .lines()
        .find_map(|l| l.trim().strip_prefix("- requested by:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let colour = match entry.kind.value.as_str() {
        "success" => "green",
        "danger" => "red",
        "warning" => "orange",
        _ => "blue",
    };
    RecentRun {
        when: entry
            .created
            .get(..16)
            .unwrap_or(&entry.created)
            .replace('T', " "),
        colour: colour.into(),
        kind: entry.kind.label.clone(),
        summary,
        requested_by,
        href: entry.display_url.clone(),
    }
}

/// The frame of every page.
async fn layout(state: &UiState, title: &str, session: Option<&Session>) -> Layout {
    Layout {
        title: title.to_string(),
        style: state.style.style().await,
        netbox_url: state.netbox_public.to_string(),
        user: session.map(|s| s.user.username.clone()),
        csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

async fn sign_in_page(
    state: &UiState,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
    next: String,
    username: String,
) -> Result<HttpResponse, UiError> {
    let csrf = random_token();
    let page = SignInPage {
        layout: layout(state, "Sign in", None).await,
        error,
        notice,
        csrf: csrf.clone(),
        next,
        username,
        ttl_text: duration_text(state.sessions.ttl()),
    };
    let mut response = html(status, page.render()?)?;
    let cookie = Cookie::build(SIGN_IN_COOKIE, csrf)
        .path("/ui/sign-in")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(1))
        .finish();
    add_cookie(&mut response, cookie);
    Ok(response)
}

async fn not_found_page(
    state: &UiState,
    session: Option<&Session>,
) -> Result<HttpResponse, UiError> {
    let page = MessagePage {
        layout: layout(state, "Not found", session).await,
        heading: "Not found".into(),
        tone: "warning",
        detail: "NetBox shows you no such device, or this page does not exist.".into(),
        guidance: "Open the device from NetBox with its Toolkit button; your NetBox account \
                   needs the right to view it."
            .into(),
        action: Some((
            state.netbox_page("dcim/devices/"),
            "Devices in NetBox".into(),
        )),
    };
    html(StatusCode::NOT_FOUND, page.render()?)
}

/// The caller behind the session's token, or the response sending the
/// person to sign in again (token revoked or expired in NetBox).
async fn caller_of(
    state: &UiState,
    service: &CommandService,
    req: &HttpRequest,
    session: &Session,
) -> Result<Caller, Result<HttpResponse, UiError>> {
    let token = session.token.api_token().clone();
    match service.authorizer().authenticate_token(token).await {
        Ok(caller) => Ok(caller),
        Err(ServiceError::Netbox(err)) if err.is_unavailable() => Err(Err(err.into())),
        Err(err) => {
            tracing::info!(error = %err, user = %session.user.username, "session token no longer accepted");
            if let Some(cookie) = req.cookie(SESSION_COOKIE) {
                state.sessions.close(cookie.value());
            }
            let mut response = see_other("/ui/sign-in?notice=expired");
            add_cookie(&mut response, expired_cookie(SESSION_COOKIE, "/ui"));
            Err(Ok(response))
        }
    }
}

fn session_of(state: &UiState, req: &HttpRequest) -> Option<Arc<Session>> {
    let cookie = req.cookie(SESSION_COOKIE)?;
    state.sessions.get(cookie.value())
}

fn session_cookie(state: &UiState, id: String) -> Cookie<'static> {
    let ttl = state.sessions.ttl().as_secs() as i64;
    Cookie::build(SESSION_COOKIE, id)
        .path("/ui")
        .http_only(true)
        .secure(state.secure_cookies)
        // Lax: the custom link in NetBox is a cross-site top-level navigation.
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(ttl))
        .finish()
}

fn expired_cookie(name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path(path).http_only(true).finish();
    cookie.make_removal();
    cookie
}

fn add_cookie(response: &mut HttpResponse, cookie: Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn to_sign_in(req: &HttpRequest) -> HttpResponse {
    let here = match req.query_string() {
        "" => req.path().to_string(),
        query => format!("{}?{query}", req.path()),
    };
    see_other(&format!("/ui/sign-in?next={}", encode(&here)))
}

/// Only paths of this page are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/ui/".into(),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

fn html(status: StatusCode, body: String) -> Result<HttpResponse, UiError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn device_path(id: u64) -> String {
    format!("api/dcim/devices/{id}/")
}

fn device_what(id: u64) -> String {
    format!("device {id}")
}

/// `ios1-show-version-20240101T120000Z.txt`: safe in any file system.
fn file_name(result: &RunResult) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    let f = result.finished;
    format!(
        "{}-{}-{:04}{:02}{:02}T{:02}{:02}{:02}Z.txt",
        clean(&result.device),
        clean(&result.command),
        f.year(),
        f.month() as u8,
        f.day(),
        f.hour(),
        f.minute(),
        f.second()
    )
}

impl UiState {
    /// The service's NetBox client (it also makes calls with a person's token).
    fn client(&self) -> &crate::netbox::NetboxClient {
        &self.netbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_names_a_credential_profile_or_leaves_the_choice_to_the_service() {
        let named = credential_choice(&fields(&[("credentials", "profile:noc")])).unwrap();
        assert!(matches!(named, ServiceCredentials::Profile(name) if name == "noc"));

        let automatic = credential_choice(&fields(&[("credentials", "automatic")])).unwrap();
        assert!(matches!(automatic, ServiceCredentials::Automatic));
    }

    #[test]
    fn only_paths_of_this_page_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/ui/devices/1")), "/ui/devices/1");
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/api/v1/health",
            "/ui\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/");
    }

    #[test]
    fn the_error_page_escapes_what_it_shows() {
        let page = plain_error_page("<script>", "a & b");
        assert!(page.contains("&lt;script&gt;") && page.contains("a &amp; b"));
    }
}
