//! The access policy: one table from method and path to the least role that may call it.
//!
//! Read top to bottom, the first matching rule wins. Then the defaults: a `GET` (or `HEAD`)
//! under `/api/` needs a viewer; a `GET` elsewhere is public (the web UI and its assets,
//! health, metrics, the WebSocket upgrade — which authenticates in its first message); and
//! anything else needs an admin. So a route another change adds is protected by default: it is
//! readable by viewers if it is a `GET` under `/api/`, and admin-only if it changes anything,
//! until a rule here says otherwise.
//!
//! Patterns: a segment `{name}` matches one non-empty segment; a final `**` matches the rest
//! (nothing included), so `/api/v1/users/**` covers `/api/v1/users` and all beneath it.

use super::Role;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// A principal with at least this role.
    Role(Role),
}

/// The least role that reads the audit log: operators and shift leads review who acknowledged
/// or shelved what at a handover. Entries carry no secret (no password, no token), but they do
/// show who logged in from where, which is more than a viewer (a wall screen, a contractor)
/// needs. The WebSocket's audit events use the same.
pub const AUDIT_READ_ROLE: Role = Role::Operator;

/// One rule of the table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// `None`: any method.
    pub method: Option<&'static str>,
    pub pattern: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, pattern: &'static str, access: Access) -> Rule {
    Rule {
        method: Some(method),
        pattern,
        access,
    }
}

const fn any(pattern: &'static str, access: Access) -> Rule {
    Rule {
        method: None,
        pattern,
        access,
    }
}

use Access::{Public, Role as R};

/// The table (see the module doc).
pub const POLICY: &[Rule] = &[
    rule("POST", "/api/v1/auth/login", Public),
    rule("POST", "/api/v1/auth/logout", R(Role::Viewer)),
    rule("GET", "/api/v1/auth/me", R(Role::Viewer)),
    rule("PUT", "/api/v1/auth/me/language", R(Role::Viewer)),
    // Every signed-in user changes their own password and sees and ends their own sessions.
    rule("PUT", "/api/v1/auth/me/password", R(Role::Viewer)),
    rule("GET", "/api/v1/auth/sessions", R(Role::Viewer)),
    rule("DELETE", "/api/v1/auth/sessions/{id}", R(Role::Viewer)),
    any("/api/v1/auth/throttles/**", R(Role::Admin)),
    any("/api/v1/sessions/**", R(Role::Admin)),
    any("/api/v1/users/**", R(Role::Admin)),
    any("/api/v1/tokens/**", R(Role::Admin)),
    // The whole log leaves the node, and a verify walks all of it: admins only.
    rule("GET", "/api/v1/audit/export", R(Role::Admin)),
    rule("GET", "/api/v1/audit/verify", R(Role::Admin)),
    any("/api/v1/gateways/**", R(Role::Admin)),
    rule("GET", "/api/v1/audit/**", R(AUDIT_READ_ROLE)),
    rule(
        "POST",
        "/api/v1/alarms/{source}/{key}/{action}",
        R(Role::Operator),
    ),
    rule("POST", "/api/v1/rooms/{id}/setpoints", R(Role::Operator)),
    rule("POST", "/api/v1/sim/faults", R(Role::Operator)),
    rule("DELETE", "/api/v1/sim/faults/**", R(Role::Operator)),
    rule("PUT", "/api/v1/rules/{id}", R(Role::RuleAuthor)),
    rule("POST", "/api/v1/rules/validate", R(Role::RuleAuthor)),
    rule("POST", "/api/v1/rules/reload", R(Role::RuleAuthor)),
    rule("POST", "/api/v1/rules/{id}/backtest", R(Role::RuleAuthor)),
    rule("POST", "/api/v1/rules/{id}/cases", R(Role::RuleAuthor)),
    // Dispatchers (operators) create orders; crews (any signed-in user) work the orders given
    // to them — the work-order model decides per command who may give it.
    rule("POST", "/api/v1/workorders", R(Role::Operator)),
    rule("POST", "/api/v1/workorders/{id}/{action}", R(Role::Viewer)),
    rule("PUT", "/api/v1/knowledge/{problem}", R(Role::RuleAuthor)),
    // The archive's spreadsheet: engineers (rule authors) and administrators load it.
    rule("POST", "/api/v1/assets/import", R(Role::RuleAuthor)),
    // The archive: engineers (rule authors) and admins keep it; everyone signed in reads it.
    rule("POST", "/api/v1/assets/rooms/**", R(Role::RuleAuthor)),
    rule("PUT", "/api/v1/assets/rooms/**", R(Role::RuleAuthor)),
    rule("DELETE", "/api/v1/assets/rooms/**", R(Role::RuleAuthor)),
    rule("POST", "/api/v1/assets/projects/**", R(Role::RuleAuthor)),
    rule("PUT", "/api/v1/assets/projects/**", R(Role::RuleAuthor)),
    rule("DELETE", "/api/v1/assets/projects/**", R(Role::RuleAuthor)),
    rule(
        "POST",
        "/api/v1/reliability/components/{room}/{tag}/{class}/events",
        R(Role::RuleAuthor),
    ),
    rule(
        "PUT",
        "/api/v1/reliability/stock/{part}",
        R(Role::RuleAuthor),
    ),
    // A crew member reports their own position (only while on a job; the service checks).
    rule("POST", "/api/v1/crews/me/position", R(Role::Viewer)),
    // Field crews (operators) record cleanings and walk inspections; intervals are settings.
    rule(
        "POST",
        "/api/v1/cleaning/{room}/{tank}/records",
        R(Role::Operator),
    ),
    rule(
        "PUT",
        "/api/v1/cleaning/{room}/{tank}/interval",
        R(Role::RuleAuthor),
    ),
    rule("POST", "/api/v1/analysis/recompute", R(Role::Operator)),
    // A user's own cockpit board: every signed-in user keeps theirs.
    rule("PUT", "/api/v1/cockpit/board", R(Role::Viewer)),
    rule("POST", "/api/v1/inspections", R(Role::Operator)),
    rule("POST", "/api/v1/inspections/**", R(Role::Operator)),
    rule("GET", "/healthz", Public),
    rule("GET", "/readyz", Public),
    rule("GET", "/metrics", Public),
    rule("GET", "/ws", Public),
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (Some("**"), _) => return true,
            (None, None) => return true,
            (Some(p), Some(s)) => {
                let ok = if p.starts_with('{') && p.ends_with('}') {
                    !s.is_empty()
                } else {
                    p == s
                };
                if !ok {
                    return false;
                }
            }
            (Some(_), None) => {
                // `/api/v1/users` against `/api/v1/users/**`: the rest may be empty.
                return pat.next().is_none() && pattern.ends_with("/**");
            }
            (None, Some(_)) => return false,
        }
    }
}

/// The route table's answer to "which methods is this path served with" (none: no route), as
/// `crate::api::configure` installs it in the app data. With it the middleware lets an
/// authenticated caller's request that no handler serves (`PUT /healthz`, `TRACE /`) through to
/// the router, which answers 405 with `Allow` (or 404) whatever the caller's role, instead of a
/// 403 for a request that could never be served.
#[derive(Clone, Copy, Debug)]
pub struct RouteMethods(pub fn(&str) -> Vec<&'static str>);

impl RouteMethods {
    /// Whether some route serves `method path` (`HEAD` is served where `GET` is).
    pub fn serves(&self, method: &str, path: &str) -> bool {
        let method = if method == "HEAD" { "GET" } else { method };
        (self.0)(path).contains(&method)
    }
}

/// Who may call `method path` (the path as routed: percent-decoded, without the query).
pub fn required(method: &str, path: &str) -> Access {
    let get = matches!(method, "GET" | "HEAD");
    for r in POLICY {
        let method_ok = match r.method {
            None => true,
            Some("GET") => get,
            Some(m) => m == method,
        };
        if method_ok && matches(r.pattern, path) {
            return r.access;
        }
    }
    match (get, path == "/api" || path.starts_with("/api/")) {
        (true, true) => Access::Role(Role::Viewer),
        (true, false) => Access::Public,
        (false, _) => Access::Role(Role::Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_who_may_do_what() {
        let cases = [
            ("POST", "/api/v1/auth/login", Public),
            ("GET", "/api/v1/auth/login", R(Role::Viewer)),
            ("GET", "/api/v1/auth/me", R(Role::Viewer)),
            ("PUT", "/api/v1/auth/me/language", R(Role::Viewer)),
            ("PUT", "/api/v1/auth/me/password", R(Role::Viewer)),
            ("GET", "/api/v1/auth/sessions", R(Role::Viewer)),
            (
                "DELETE",
                "/api/v1/auth/sessions/0011223344556677",
                R(Role::Viewer),
            ),
            ("GET", "/api/v1/auth/throttles", R(Role::Admin)),
            ("POST", "/api/v1/auth/throttles/unlock", R(Role::Admin)),
            ("GET", "/api/v1/sessions", R(Role::Admin)),
            (
                "DELETE",
                "/api/v1/sessions/0011223344556677",
                R(Role::Admin),
            ),
            ("GET", "/api/v1/rooms", R(Role::Viewer)),
            ("GET", "/api/v1/rooms/XM-0001", R(Role::Viewer)),
            ("GET", "/api/v1/history", R(Role::Viewer)),
            ("GET", "/api/v1/analysis/compare", R(Role::Viewer)),
            ("GET", "/api/v1/analysis/leakage", R(Role::Viewer)),
            ("GET", "/api/v1/analysis/leakage/XM-0001", R(Role::Viewer)),
            (
                "POST",
                "/api/v1/alarms/XM-0001/pump_fault@P1/ack",
                R(Role::Operator),
            ),
            (
                "POST",
                "/api/v1/alarms/zone:siming/zone_event@room/ack",
                R(Role::Operator),
            ),
            ("POST", "/api/v1/sim/faults", R(Role::Operator)),
            ("POST", "/api/v1/rooms/XM-0001/setpoints", R(Role::Operator)),
            ("PUT", "/api/v1/rules/door_held_open", R(Role::RuleAuthor)),
            ("POST", "/api/v1/rules/reload", R(Role::RuleAuthor)),
            ("POST", "/api/v1/rules/validate", R(Role::RuleAuthor)),
            ("POST", "/api/v1/rules/x/backtest", R(Role::RuleAuthor)),
            ("POST", "/api/v1/rules/x/cases", R(Role::RuleAuthor)),
            ("GET", "/api/v1/rules/door_held_open", R(Role::Viewer)),
            ("GET", "/api/v1/users", R(Role::Admin)),
            ("POST", "/api/v1/users", R(Role::Admin)),
            ("PATCH", "/api/v1/users/op1", R(Role::Admin)),
            ("DELETE", "/api/v1/users/op1", R(Role::Admin)),
            ("GET", "/api/v1/tokens", R(Role::Admin)),
            ("PUT", "/api/v1/gateways/gw-XM-0001", R(Role::Admin)),
            ("DELETE", "/api/v1/tokens/0011223344556677", R(Role::Admin)),
            ("GET", "/api/v1/audit", R(Role::Operator)),
            ("GET", "/api/v1/audit/export", R(Role::Admin)),
            ("GET", "/api/v1/audit/verify", R(Role::Admin)),
            ("GET", "/healthz", Public),
            ("GET", "/readyz", Public),
            ("GET", "/metrics", Public),
            ("GET", "/ws", Public),
            ("GET", "/", Public),
            ("GET", "/assets/app.js", Public),
            // Not in the table: protected by default.
            ("POST", "/api/v1/something-new", R(Role::Admin)),
            ("DELETE", "/api/v1/rooms/XM-0001", R(Role::Admin)),
            ("POST", "/", R(Role::Admin)),
            ("GET", "/api/v2/anything", R(Role::Viewer)),
        ];
        for (method, path, want) in cases {
            assert_eq!(required(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn patterns_match_whole_segments_only() {
        assert!(matches("/api/v1/users/**", "/api/v1/users"));
        assert!(matches("/api/v1/users/**", "/api/v1/users/op1/x"));
        assert!(!matches("/api/v1/users/**", "/api/v1/usersx"));
        assert!(matches("/api/v1/rules/{id}", "/api/v1/rules/x"));
        assert!(!matches("/api/v1/rules/{id}", "/api/v1/rules/"));
        assert!(!matches("/api/v1/rules/{id}", "/api/v1/rules/x/y"));
        // A trailing slash or a doubled one is not the rule's route: the defaults apply, and
        // the router finds no handler either.
        assert_eq!(required("PUT", "/api/v1/rules/x/"), R(Role::Admin));
        assert_eq!(required("POST", "/api/v1//sim/faults"), R(Role::Admin));
    }
}
