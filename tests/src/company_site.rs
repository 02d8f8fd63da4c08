//! A company's website with Assent's banner on it, for the browser tests of the
//! website script (issue 19).
//!
//! It listens on `127.0.0.1` but is addressed as `http://localhost:PORT`
//! ([`CompanySite::origin`]), so its pages are of another origin than Assent's
//! `http://127.0.0.1:PORT`: every call of the script is cross-origin, as on a real
//! site. Publish the banner with that origin, then [`CompanySite::embed`] the script
//! with the integrity hash `GET /v1/banner` gives.
//!
//! Pages (all sent with a strict `Content-Security-Policy`, [`CompanySite::csp`]: no
//! `unsafe-inline`, no `unsafe-eval`, scripts and styles only from the site and
//! Assent, requests only to Assent):
//! - `/`: in `<head>`, the test's `/csp-watch.js` (every `securitypolicyviolation`
//!   into `window.__csp`; the one thing before Assent's script, so that it sees the
//!   script's first line too) and `/fetch-watch.js` (every answer the server gives
//!   to `POST /c/{slug}/consents`, as JSON, into `window.__answers`: how the test
//!   learns an answer's `choice_id`), Assent's script with `integrity` and
//!   `crossorigin="anonymous"`, a stand-in for Google's `gtag.js` (every command into
//!   `window.__gtag`, `gtag('config')` after the script's Consent Mode default) and an
//!   analytics script held back until analytics is granted
//!   (`<script type="text/plain" data-assent-purpose="analytics">`; it counts its runs
//!   in `window.__analyticsRuns`); in `<body>`, a sign-up form
//!   `<form data-assent-form="signup">` posting to `/signup`, and a footer link
//!   `#cookie-settings` that calls `Assent.open()`. Before Assent's script,
//!   `/events-watch.js` keeps the `detail` of every `assent:change` event the script
//!   dispatches in `window.__changes`, as the page's own code would listen.
//! - `/gpc`: the same page with `/gpc.js` before Assent's script, which turns Global
//!   Privacy Control on (`navigator.globalPrivacyControl === true`).
//! - `/ru`: the same page in Russian (`<html lang="ru">`).
//! - `POST /signup`: keeps each posted form ([`CompanySite::signups`]) and thanks.
//!
//! The server (actix-web, one worker) runs on a thread of its own; dropping it stops it.

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// One posted form: its fields in order (a repeated name appears once per value).
pub type Signup = Vec<(String, String)>;

/// Records every `securitypolicyviolation` (loaded before anything else on the page).
const CSP_WATCH_JS: &str = "window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample });
});
";

/// Keeps the server's answers to the script's `POST .../consents` (`visitor_id`,
/// `choice_id`, …) in `window.__answers`; it only looks, the script gets every
/// response as sent.
const FETCH_WATCH_JS: &str = "window.__answers = [];
(function () {
  var fetch = window.fetch;
  window.fetch = function (input) {
    return fetch.apply(this, arguments).then(function (r) {
      if (/\\/consents$/.test(String(input)) && r.ok) {
        r.clone().json().then(function (j) { window.__answers.push(j); }, function () {});
      }
      return r;
    });
  };
})();
";

/// The page's own code listening to the script's event.
const EVENTS_WATCH_JS: &str = "window.__changes = [];
document.addEventListener('assent:change', function (e) { window.__changes.push(e.detail); });
";

/// A stand-in for Google's gtag.js: like the real one it takes over `dataLayer`
/// (reading what was queued before it loaded) and it keeps every command, as plain
/// arrays, in `window.__gtag`.
const GTAG_JS: &str = "(function () {
  var log = window.__gtag = [];
  var dl = window.dataLayer = window.dataLayer || [];
  function take(args) { log.push(JSON.parse(JSON.stringify(Array.prototype.slice.call(args)))); }
  dl.forEach(take);
  var push = dl.push;
  dl.push = function () { Array.prototype.forEach.call(arguments, take); return push.apply(dl, arguments); };
  if (typeof window.gtag !== 'function') window.gtag = function () { dl.push(arguments); };
  window.gtag('js', 'loaded');
  window.gtag('config', 'G-TEST');
})();
";

/// The analytics the banner holds back: counts how many times it ran.
const ANALYTICS_JS: &str = "window.__analyticsRuns = (window.__analyticsRuns || 0) + 1;\n";
/// Gated as `necessary`: the script never runs it (a necessary script needs no gate,
/// and running one would turn injected markup into code).
const GATED_NECESSARY_JS: &str = "window.__gatedNecessaryRan = true;\n";

/// Global Privacy Control on, as a browser or extension that sends it does.
const GPC_JS: &str = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true });\n";

/// The footer's "Cookie settings" link.
const FOOTER_JS: &str =
    "document.getElementById('cookie-settings').addEventListener('click', function (e) {
  e.preventDefault();
  if (window.Assent) window.Assent.open();
});
";

const THANKS: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Thanks</title></head><body><h1 id=\"thanks\">Thanks for signing up</h1></body></html>";

/// The pages, built once the script is embedded.
struct Pages {
    csp: String,
    home: String,
    gpc: String,
    ru: String,
}

#[derive(Default)]
struct Shared {
    pages: Mutex<Option<Pages>>,
    signups: Mutex<Vec<Signup>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running company website. Dropping it stops it.
pub struct CompanySite {
    origin: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl CompanySite {
    /// Listens on a free port of 127.0.0.1; the pages answer 404 until
    /// [`embed`](Self::embed).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the company site");
        let port = listener.local_addr().expect("company site address").port();
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(Arc::clone(&shared));
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("company-site-{port}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .default_service(web::to(handle))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .listen(listener)
                    .expect("listen company site")
                    .run();
                    handle_tx
                        .send(server.handle())
                        .expect("hand over server handle");
                    let _ = server.await;
                })
            })
            .expect("spawn the company site thread");
        let handle = handle_rx.recv().expect("the company site started");
        Self {
            origin: format!("http://localhost:{port}"),
            shared,
            handle,
            thread: Some(thread),
        }
    }

    /// `http://localhost:PORT`: what the banner's `origins` must name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The URL of `path` on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// The policy every response carries, for Assent at `assent_base`.
    pub fn csp(assent_base: &str) -> String {
        format!(
            "default-src 'self'; script-src 'self' {assent_base}; style-src 'self' {assent_base}; \
             connect-src {assent_base}; img-src 'self'"
        )
    }

    /// Puts Assent's script (at `assent_base`, for the company `slug`, with the
    /// integrity hash `GET /v1/banner` gives) on the pages.
    pub fn embed(&self, assent_base: &str, slug: &str, integrity: &str) {
        let assent = format!(
            "<script src=\"{assent_base}/sdk/v1/assent.js\" data-tenant=\"{slug}\" \
             integrity=\"{integrity}\" crossorigin=\"anonymous\"></script>"
        );
        *lock(&self.shared.pages) = Some(Pages {
            csp: Self::csp(assent_base),
            home: page(&assent, false, "en"),
            gpc: page(&assent, true, "en"),
            ru: page(&assent, false, "ru"),
        });
    }

    /// Every form posted to `/signup` so far, in order.
    pub fn signups(&self) -> Vec<Signup> {
        lock(&self.shared.signups).clone()
    }
}

impl Drop for CompanySite {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only waits for it.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The company's page in `lang`; with `gpc`, Global Privacy Control is on before the
/// banner script runs.
fn page(assent: &str, gpc: bool, lang: &str) -> String {
    let gpc = if gpc {
        "<script src=\"/gpc.js\"></script>\n"
    } else {
        ""
    };
    format!(
        "<!doctype html>
<html lang=\"{lang}\">
<head>
<meta charset=\"utf-8\">
<title>Acme shop</title>
<script src=\"/csp-watch.js\"></script>
<script src=\"/fetch-watch.js\"></script>
<script src=\"/events-watch.js\"></script>
{gpc}{assent}
<script src=\"/gtag.js\"></script>
<script type=\"text/plain\" data-assent-purpose=\"analytics\" src=\"/analytics.js\"></script>
<script type=\"text/plain\" data-assent-purpose=\"necessary\" src=\"/gated-necessary.js\"></script>
</head>
<body>
<h1>Acme shop</h1>
<p>Fresh things every day.</p>
<form data-assent-form=\"signup\" action=\"/signup\" method=\"post\">
<p><label for=\"email\">Email</label> <input type=\"email\" id=\"email\" name=\"email\" required></p>
<button type=\"submit\" id=\"signup\">Sign up</button>
</form>
<footer><a href=\"#\" id=\"cookie-settings\">Cookie settings</a></footer>
<script src=\"/footer.js\"></script>
</body>
</html>
"
    )
}

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let (csp, html) = {
        let pages = lock(&shared.pages);
        let Some(p) = pages.as_ref() else {
            return HttpResponse::NotFound().finish();
        };
        let html = match req.path() {
            "/" => Some(p.home.clone()),
            "/gpc" => Some(p.gpc.clone()),
            "/ru" => Some(p.ru.clone()),
            _ => None,
        };
        (p.csp.clone(), html)
    };
    let post = req.method() == actix_web::http::Method::POST;
    let (content_type, body) = match (req.path(), html) {
        (_, Some(html)) if !post => ("text/html; charset=utf-8", html),
        ("/signup", _) if post => {
            let fields: Signup = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            lock(&shared.signups).push(fields);
            ("text/html; charset=utf-8", THANKS.to_owned())
        }
        (path, _) if !post => {
            let js = match path {
                "/csp-watch.js" => CSP_WATCH_JS,
                "/fetch-watch.js" => FETCH_WATCH_JS,
                "/events-watch.js" => EVENTS_WATCH_JS,
                "/gtag.js" => GTAG_JS,
                "/analytics.js" => ANALYTICS_JS,
                "/gated-necessary.js" => GATED_NECESSARY_JS,
                "/gpc.js" => GPC_JS,
                "/footer.js" => FOOTER_JS,
                _ => return HttpResponse::NotFound().finish(),
            };
            ("application/javascript; charset=utf-8", js.to_owned())
        }
        _ => return HttpResponse::MethodNotAllowed().finish(),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}
