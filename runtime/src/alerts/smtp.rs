//! One e-mail through an SMTP server under the egress policy (RFC 5321): the host is resolved
//! and checked once and the client connects to the checked addresses only; `EHLO`, `STARTTLS`
//! (or TLS from the first byte) with the certificate verified against the host's name,
//! `AUTH PLAIN` or `LOGIN` over TLS only, then `MAIL`, `RCPT` and `DATA` with dot-stuffing.
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::channel::{EmailConfig, SmtpTls};
use super::send::{Sent, TIMEOUT, addresses};
use crate::egress::Policy;

/// The longest reply (all its lines) read from the server.
const MAX_REPLY: usize = 16 * 1024;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The certificates of a PEM text; an error when it holds none or one does not parse.
pub fn certificates(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}"))?;
    if certs.is_empty() {
        return Err("no certificate".into());
    }
    Ok(certs)
}

/// Sends `message` (a whole RFC 5322 message, CRLF line ends) to `mail`'s recipients.
pub async fn send(egress: &Policy, mail: &EmailConfig, message: &[u8]) -> Sent {
    let started = Instant::now();
    let result = match tokio::time::timeout(TIMEOUT, dialogue(egress, mail, message)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the SMTP server did not finish in {}s",
            TIMEOUT.as_secs()
        )),
    };
    let took = started.elapsed();
    match result {
        Ok(reply) => Sent::taken(None, reply, took),
        Err(e) => Sent::failed(None, None, e, took),
    }
}

/// The whole exchange; the server's last reply when it took the message.
async fn dialogue(egress: &Policy, mail: &EmailConfig, message: &[u8]) -> Result<String, String> {
    let port = mail.port();
    let addrs = addresses(egress, &mail.host, port).await?;
    let mut last = format!("{} has no address to connect to", mail.host);
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    match mail.tls {
        SmtpTls::Tls => {
            let mut c = Conn::new(tls(tcp, mail).await?);
            c.expect(220, "the greeting").await?;
            let offers = c.ehlo().await?;
            deliver(c, &offers, mail, message).await
        }
        SmtpTls::None => {
            let mut c = Conn::new(tcp);
            c.expect(220, "the greeting").await?;
            let offers = c.ehlo().await?;
            deliver(c, &offers, mail, message).await
        }
        SmtpTls::Starttls => {
            let mut c = Conn::new(tcp);
            c.expect(220, "the greeting").await?;
            let offers = c.ehlo().await?;
            if !offers.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                return Err("the SMTP server does not offer STARTTLS".into());
            }
            c.command("STARTTLS").await?;
            c.expect(220, "STARTTLS").await?;
            let mut c = Conn::new(tls(c.into_inner()?, mail).await?);
            let offers = c.ehlo().await?;
            deliver(c, &offers, mail, message).await
        }
    }
}

/// After `EHLO` (over TLS unless `tls: none`): authenticates, then sends `message`.
async fn deliver<S: Io>(
    mut c: Conn<S>,
    offers: &[String],
    mail: &EmailConfig,
    message: &[u8],
) -> Result<String, String> {
    if let (Some(user), Some(password)) = (&mail.username, &mail.password) {
        c.auth(offers, user, password).await?;
    }
    c.command(&format!("MAIL FROM:<{}>", mail.from)).await?;
    c.expect(250, "MAIL FROM").await?;
    for to in &mail.to {
        c.command(&format!("RCPT TO:<{to}>")).await?;
        let (code, text) = c.reply().await?;
        if code != 250 && code != 251 {
            return Err(format!("RCPT TO <{to}>: the SMTP server answered {text}"));
        }
    }
    c.command("DATA").await?;
    c.expect(354, "DATA").await?;
    c.write(&stuffed(message)).await?;
    let taken = c.expect(250, "the message").await?;
    let _ = c.command("QUIT").await;
    Ok(taken)
}

/// TLS over `stream`, the certificate verified against `mail.host` with the platform's roots
/// (the web PKI's when it has none) and `mail.ca_cert`.
async fn tls(
    stream: TcpStream,
    mail: &EmailConfig,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = (*crate::egress::tls_roots().await).clone();
    if let Some(pem) = &mail.ca_cert {
        roots.add_parsable_certificates(certificates(pem)?);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = match mail.host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls::pki_types::ServerName::try_from(mail.host.clone())
            .map_err(|_| format!("{:?} is not a TLS server name", mail.host))?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS with {}: {e}", mail.host))
}

/// `message` as DATA sends it: CRLF line ends, a line that starts with `.` doubled, and the
/// closing `.` line.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let mut out = Vec::with_capacity(message.len() + 8);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if text.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A connection to an SMTP server: commands out, replies in.
struct Conn<S> {
    io: BufReader<S>,
}

impl<S: Io> Conn<S> {
    fn new(io: S) -> Self {
        Self {
            io: BufReader::new(io),
        }
    }

    /// The stream under a connection about to start TLS; an error if the server sent more
    /// than its reply (bytes that would pass as if they had come over TLS).
    fn into_inner(self) -> Result<S, String> {
        if !self.io.buffer().is_empty() {
            return Err("the SMTP server sent data after its STARTTLS reply".into());
        }
        Ok(self.io.into_inner())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = self.io.get_mut();
        w.write_all(bytes)
            .await
            .map_err(|e| format!("writing to the SMTP server: {e}"))?;
        w.flush()
            .await
            .map_err(|e| format!("writing to the SMTP server: {e}"))
    }

    async fn command(&mut self, line: &str) -> Result<(), String> {
        self.write(format!("{line}\r\n").as_bytes()).await
    }

    /// One reply: its code and its lines' text joined (`250 ok`).
    async fn reply(&mut self) -> Result<(u16, String), String> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.io)
                .take((MAX_REPLY - text.len().min(MAX_REPLY)) as u64 + 1)
                .read_line(&mut line)
                .await
                .map_err(|e| format!("reading from the SMTP server: {e}"))?;
            if n == 0 {
                return Err("the SMTP server closed the connection".into());
            }
            if text.len() + line.len() > MAX_REPLY {
                return Err("the SMTP server's reply is too long".into());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("the SMTP server said {line:?}, not a reply"))?;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text));
            }
        }
    }

    /// Reads a reply that must have `code`; its text.
    async fn expect(&mut self, code: u16, what: &str) -> Result<String, String> {
        let (got, text) = self.reply().await?;
        if got == code {
            Ok(text)
        } else {
            Err(format!("{what}: the SMTP server answered {text}"))
        }
    }

    /// `EHLO`; the extensions the server offers (one per line after the first).
    async fn ehlo(&mut self) -> Result<Vec<String>, String> {
        self.command("EHLO autoflow").await?;
        let text = self.expect(250, "EHLO").await?;
        Ok(text
            .lines()
            .skip(1)
            .map(|l| l.get(4..).unwrap_or_default().to_string())
            .collect())
    }

    /// `AUTH PLAIN` (or `LOGIN` when that is all the server offers).
    async fn auth(&mut self, offers: &[String], user: &str, password: &str) -> Result<(), String> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mechanisms: Vec<String> = offers
            .iter()
            .filter_map(|l| {
                let upper = l.to_ascii_uppercase();
                upper
                    .strip_prefix("AUTH")
                    .map(|m| m.trim_start_matches([' ', '=']).to_string())
            })
            .flat_map(|m| m.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect();
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let token = b64(format!("\0{user}\0{password}").as_bytes());
            self.command(&format!("AUTH PLAIN {token}")).await?;
        } else if mechanisms.iter().any(|m| m == "LOGIN") {
            self.command("AUTH LOGIN").await?;
            self.expect(334, "AUTH LOGIN").await?;
            self.command(&b64(user.as_bytes())).await?;
            self.expect(334, "AUTH LOGIN").await?;
            self.command(&b64(password.as_bytes())).await?;
        } else {
            return Err(format!(
                "the SMTP server offers no AUTH PLAIN or LOGIN (it offers: {})",
                mechanisms.join(" ")
            ));
        }
        self.expect(235, "AUTH").await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_dot_stuffed_with_crlf_and_closed() {
        assert_eq!(
            stuffed(b"a: b\n\n.x\r\nlast\n"),
            b"a: b\r\n\r\n..x\r\nlast\r\n.\r\n".to_vec()
        );
        assert_eq!(stuffed(b"one"), b"one\r\n.\r\n".to_vec());
    }
}
