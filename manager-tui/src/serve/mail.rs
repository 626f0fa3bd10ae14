//! How operator codes reach operators: files in an outbox directory for the local
//! deployment, SES v2 from a verified sender on AWS.
use std::path::PathBuf;

use super::now;

#[async_trait::async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String>;
}

/// The local deployment's "mail": RFC 5322 messages written to an outbox directory.
pub struct Outbox {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl MailTransport for Outbox {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .map_err(|e| e.to_string())?;
        let id = hex::encode(rand::random::<[u8; 12]>());
        let message = format!(
            "From: Gallery control plane <gallery@localhost>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: <{id}@gallery.localhost>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        );
        let path = self.dir.join(format!("{}-{id}.eml", now() as u64));
        let tmp = self.dir.join(format!(".{id}.tmp"));
        std::fs::write(&tmp, message)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| e.to_string())?;
        tracing::info!(path = %path.display(), "operator code written to the outbox");
        Ok(())
    }
}

/// The aws deployment's mail: SES v2 from the configured verified sender.
#[cfg(feature = "aws")]
pub struct Ses {
    client: aws_sdk_sesv2::Client,
    from: String,
}

#[cfg(feature = "aws")]
impl Ses {
    pub async fn new(from: &str, region: Option<&str>) -> Ses {
        Ses {
            client: aws_sdk_sesv2::Client::new(&super::pool::aws::sdk_config(region).await),
            from: from.to_owned(),
        }
    }
}

#[cfg(feature = "aws")]
#[async_trait::async_trait]
impl MailTransport for Ses {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let content = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| e.to_string())
        };
        let message = Message::builder()
            .subject(content(subject)?)
            .body(Body::builder().text(content(body)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "SES SendEmail: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(e)
                )
            })?;
        tracing::info!(%to, "operator code sent with SES");
        Ok(())
    }
}
