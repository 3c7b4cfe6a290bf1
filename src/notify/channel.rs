//! Channels as plug-ins: each kind turns a message into its endpoint's request and says whether
//! the endpoint took it. Group channels (a JSON webhook, a WeCom or DingTalk robot) deliver to
//! one place; personal channels (e-mail, SMS) deliver to a recipient's address. Every attempt
//! has a timeout, so a hanging endpoint is a failed attempt, not a stall; robots report errors
//! inside an HTTP 200 body (`errcode` ≠ 0), which count as failed attempts too.
//!
//! The HTTP kinds use `ureq` on the blocking pool, over HTTPS (rustls on ring; the public
//! roots, or the channel's own `ca`) or plain `http://` to a local relay; e-mail uses `lettre`
//! over SMTP, plain to a local relay or with STARTTLS/TLS (rustls on ring).

use super::policy::dingtalk_sign;
use super::{ChannelConfig, ChannelKind, MessageFormat, SmtpTls};
use futures::future::BoxFuture;
use serde_json::json;
use std::fmt;
use std::time::Duration;

/// What one attempt sends.
#[derive(Clone, Debug)]
pub struct Message {
    pub event: String,
    pub severity: String,
    pub title: String,
    pub text: String,
    pub alarm: Option<String>,
    pub order: Option<String>,
    pub recipient: String,
    /// The e-mail address or phone number (personal channels).
    pub address: Option<String>,
    pub language: String,
    pub at_ms: i64,
}

/// A channel: one request per message, `Err` with a short reason when not taken.
pub trait Channel: Send + Sync + fmt::Debug {
    fn kind(&self) -> ChannelKind;
    fn deliver<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), String>>;
}

/// Builds the channel `c` describes (its fields were checked with the configuration).
pub fn build(c: &ChannelConfig, timeout: Duration) -> Result<Box<dyn Channel>, String> {
    let timeout = c.timeout.unwrap_or(timeout);
    Ok(match c.kind {
        ChannelKind::Email => Box::new(Email::new(c, timeout)?),
        _ => {
            let mut agent = ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(false);
            if let Some(ca) = &c.ca {
                let roots = crate::tls::load_certs(ca)
                    .map_err(|e| format!("channel {:?}: {e}", c.name))?
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                agent = agent.tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
                        .build(),
                );
            }
            Box::new(Http {
                config: c.clone(),
                agent: agent.build().into(),
            })
        }
    })
}

/// The HTTP kinds: webhook, WeCom, DingTalk, SMS gateway.
struct Http {
    config: ChannelConfig,
    agent: ureq::Agent,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("name", &self.config.name)
            .field("kind", &self.config.kind)
            .finish()
    }
}

/// A request ready to go.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `s` with `{name}` replaced by values, JSON-escaped when `json` (the body of a JSON
/// template), percent-encoded when `url`.
fn fill(template: &str, values: &[(&str, &str)], json: bool, url: bool) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        let v = if json {
            let quoted = serde_json::Value::String((*value).to_owned()).to_string();
            quoted[1..quoted.len() - 1].to_owned()
        } else if url {
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        } else {
            (*value).to_owned()
        };
        out = out.replace(&format!("{{{name}}}"), &v);
    }
    out
}

/// The request channel `c` makes of `m` (`now_ms`: DingTalk's signing time).
pub fn request(c: &ChannelConfig, m: &Message, now_ms: i64) -> Request {
    let url = c.url.clone().unwrap_or_default();
    let json_headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let post = |url: String, body: serde_json::Value| Request {
        method: "POST".into(),
        url,
        headers: json_headers.clone(),
        body: body.to_string(),
    };
    match c.kind {
        ChannelKind::Webhook | ChannelKind::Email => post(
            url,
            json!({
                "event": m.event, "severity": m.severity, "title": m.title, "text": m.text,
                "alarm": m.alarm, "order": m.order, "recipient": m.recipient,
                "language": m.language, "at": m.at_ms,
            }),
        ),
        ChannelKind::Wecom => post(
            url,
            match c.format {
                MessageFormat::Markdown => json!({
                    "msgtype": "markdown",
                    "markdown": {"content": format!("**{}**\n> {}", m.title, m.text)},
                }),
                MessageFormat::Text => json!({
                    "msgtype": "text",
                    "text": {"content": format!("{}\n{}", m.title, m.text)},
                }),
            },
        ),
        ChannelKind::Dingtalk => {
            let url = match &c.secret {
                Some(secret) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    format!(
                        "{url}{sep}timestamp={now_ms}&sign={}",
                        dingtalk_sign(secret, now_ms)
                    )
                }
                None => url,
            };
            post(
                url,
                match c.format {
                    MessageFormat::Markdown => json!({
                        "msgtype": "markdown",
                        "markdown": {"title": m.title, "text": format!("### {}\n\n{}", m.title, m.text)},
                    }),
                    MessageFormat::Text => json!({
                        "msgtype": "text",
                        "text": {"content": format!("{}\n{}", m.title, m.text)},
                    }),
                },
            )
        }
        ChannelKind::Sms => {
            let phone = m.address.as_deref().unwrap_or_default();
            let text = format!("{} {}", m.title, m.text);
            let values = [("phone", phone), ("text", text.as_str())];
            let template = c.body.as_deref().unwrap_or_default();
            let json = template.trim_start().starts_with(['{', '[']);
            Request {
                method: c.method.clone().unwrap_or_else(|| "POST".into()),
                url: fill(&url, &values, false, true),
                headers: c
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), fill(v, &values, false, false)))
                    .collect(),
                body: fill(template, &values, json, false),
            }
        }
    }
}

/// Whether a robot's 200 answer reports success (`errcode` 0 or absent).
pub fn robot_answer(body: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => match v.get("errcode").and_then(serde_json::Value::as_i64) {
            None | Some(0) => Ok(()),
            Some(code) => Err(format!(
                "errcode {code}: {}",
                v.get("errmsg")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
            )),
        },
        Err(_) => Err(format!("not a robot's answer: {}", short(body))),
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

impl Http {
    fn send_blocking(agent: &ureq::Agent, r: &Request, kind: ChannelKind) -> Result<(), String> {
        let result = match r.method.to_ascii_uppercase().as_str() {
            "GET" => {
                let mut b = agent.get(&r.url);
                for (k, v) in &r.headers {
                    b = b.header(k, v);
                }
                b.call()
            }
            "PUT" => {
                let mut b = agent.put(&r.url);
                for (k, v) in &r.headers {
                    b = b.header(k, v);
                }
                b.send(&r.body)
            }
            _ => {
                let mut b = agent.post(&r.url);
                for (k, v) in &r.headers {
                    b = b.header(k, v);
                }
                b.send(&r.body)
            }
        };
        let mut response = result.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        if !status.is_success() {
            return Err(format!("HTTP {}: {}", status.as_u16(), short(&body)));
        }
        match kind {
            ChannelKind::Wecom | ChannelKind::Dingtalk => robot_answer(&body),
            _ => Ok(()),
        }
    }
}

impl Channel for Http {
    fn kind(&self) -> ChannelKind {
        self.config.kind
    }

    fn deliver<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let r = request(
                &self.config,
                m,
                cistern_schemas::Timestamp::now().as_millis(),
            );
            let (agent, kind) = (self.agent.clone(), self.config.kind);
            tokio::task::spawn_blocking(move || Self::send_blocking(&agent, &r, kind))
                .await
                .map_err(|e| format!("the request task failed: {e}"))?
        })
    }
}

/// E-mail over SMTP.
struct Email {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    timeout: Duration,
    name: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email").field("name", &self.name).finish()
    }
}

impl Email {
    fn new(c: &ChannelConfig, timeout: Duration) -> Result<Self, String> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let host = c.smtp_host.as_deref().unwrap_or("127.0.0.1");
        let builder = match c.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("SMTP {host}: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("SMTP {host}: {e}"))?,
        };
        let mut builder = builder.timeout(Some(timeout));
        if let Some(port) = c.smtp_port {
            builder = builder.port(port);
        }
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let from = c
            .from
            .as_deref()
            .unwrap_or("cistern@localhost")
            .parse()
            .map_err(|e| format!("from address: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
            timeout,
            name: c.name.clone(),
        })
    }
}

impl Channel for Email {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn deliver<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), String>> {
        use lettre::AsyncTransport;
        Box::pin(async move {
            let to: lettre::message::Mailbox = m
                .address
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("recipient address: {e}"))?;
            let mail = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.title.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(m.text.clone())
                .map_err(|e| format!("cannot build the message: {e}"))?;
            match tokio::time::timeout(self.timeout, self.transport.send(mail)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("SMTP: {e}")),
                Err(_) => Err(format!("SMTP: no answer within {:?}", self.timeout)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            event: "alarm_escalation".into(),
            severity: "P1".into(),
            title: "P1 告警升级".into(),
            text: "XM-0001 \"水泵\" 故障".into(),
            alarm: Some("XM-0001/pump_fault@P1".into()),
            order: None,
            recipient: "ops".into(),
            address: Some("+8613800000000".into()),
            language: "zh-CN".into(),
            at_ms: 1_000,
        }
    }

    fn channel(kind: ChannelKind) -> ChannelConfig {
        ChannelConfig {
            name: "c".into(),
            kind,
            url: Some("http://127.0.0.1:9/robot/send?access_token=T".into()),
            ..ChannelConfig::default()
        }
    }

    #[test]
    fn robots_get_their_formats_and_dingtalk_is_signed_in_the_url() {
        let m = message();
        let w = request(&channel(ChannelKind::Wecom), &m, 0);
        let v: serde_json::Value = serde_json::from_str(&w.body).unwrap();
        assert_eq!(v["msgtype"], "markdown");
        assert!(v["markdown"]["content"].as_str().unwrap().contains("水泵"));
        let mut text = channel(ChannelKind::Wecom);
        text.format = MessageFormat::Text;
        let v: serde_json::Value = serde_json::from_str(&request(&text, &m, 0).body).unwrap();
        assert_eq!(v["msgtype"], "text");
        let mut d = channel(ChannelKind::Dingtalk);
        d.secret = Some("SECtest".into());
        let r = request(&d, &m, 1_700_000_000_000);
        assert_eq!(
            r.url,
            "http://127.0.0.1:9/robot/send?access_token=T&timestamp=1700000000000&sign=aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D"
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["markdown"]["title"], "P1 告警升级");
    }

    #[test]
    fn the_sms_template_fills_phone_and_text_escaped_for_json_and_the_url() {
        let mut c = channel(ChannelKind::Sms);
        c.url = Some("http://gw/send?to={phone}".into());
        c.body = Some(r#"{"to":"{phone}","content":"{text}"}"#.into());
        c.headers = [("x-key".to_owned(), "K".to_owned())].into();
        let r = request(&c, &message(), 0);
        assert_eq!(r.url, "http://gw/send?to=%2B8613800000000");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["to"], "+8613800000000");
        assert_eq!(v["content"], "P1 告警升级 XM-0001 \"水泵\" 故障");
        assert_eq!(r.headers, [("x-key".to_owned(), "K".to_owned())]);
    }

    #[test]
    fn a_robot_error_in_a_200_body_is_a_failure() {
        assert_eq!(robot_answer(r#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
        assert_eq!(
            robot_answer(r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
            Err("errcode 45009: api freq out of limit".into())
        );
        assert!(robot_answer("<html>").is_err());
    }
}

#[cfg(test)]
mod https_tests {
    use super::*;

    /// A WeCom robot behind HTTPS with the utility's own CA takes the message; without the CA
    /// (the public roots only) the attempt fails on the certificate, with a reason.
    #[actix_web::test]
    async fn a_robot_is_reached_over_https_with_the_channels_ca() {
        let dir = std::env::temp_dir().join(format!("cistern-notify-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (ca, config) = crate::tls::testing::pilot(&dir);
        let (addr, handle) = crate::tls::testing::serve(&config, |app| {
            app.route(
                "/cgi-bin/webhook/send",
                actix_web::web::post().to(|| async { "{\"errcode\":0,\"errmsg\":\"ok\"}" }),
            );
        });
        let mut c = ChannelConfig {
            name: "wecom".into(),
            kind: ChannelKind::Wecom,
            url: Some(format!("https://{addr}/cgi-bin/webhook/send?key=K")),
            ca: Some(ca),
            ..ChannelConfig::default()
        };
        let m = Message {
            event: "alarm_escalation".into(),
            severity: "P1".into(),
            title: "P1 告警升级".into(),
            text: "XM-0001 水泵故障".into(),
            alarm: None,
            order: None,
            recipient: "ops".into(),
            address: None,
            language: "zh-CN".into(),
            at_ms: 1_000,
        };
        let with_ca = build(&c, Duration::from_secs(10)).unwrap();
        with_ca.deliver(&m).await.unwrap();
        c.ca = None;
        let public_roots = build(&c, Duration::from_secs(10)).unwrap();
        let refused = public_roots.deliver(&m).await.unwrap_err();
        assert!(refused.to_lowercase().contains("certificate"), "{refused}");
        handle.stop(true).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
