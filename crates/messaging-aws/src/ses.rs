//! Email through SESv2: the notification digests, from the stack's verified identity.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};

use messaging_core::templates::Email;

use crate::error::{classify_redacted, AwsError};

/// Sends mail from one verified SES identity.
#[derive(Debug, Clone)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
}

fn build_error(error: aws_sdk_sesv2::error::BuildError) -> AwsError {
    AwsError::Failed(format!("email could not be built: {error}"))
}

impl Mailer {
    /// `sender`: the verified SES identity mail comes from (`SENDER_EMAIL`).
    pub fn new(client: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Self {
        Self {
            client,
            sender: sender.into(),
        }
    }

    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// The same client, sending from another identity.
    pub fn with_sender(&self, sender: impl Into<String>) -> Self {
        Self {
            client: self.client.clone(),
            sender: sender.into(),
        }
    }

    /// Sends `email` (HTML and text parts) to `to`, with the one-click unsubscribe headers
    /// (RFC 8058) that mailbox providers expect of bulk mail pointing at `unsubscribe`.
    pub async fn send(&self, to: &str, email: &Email, unsubscribe: &str) -> Result<(), AwsError> {
        let text = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(build_error)
        };
        let header = |name: &str, value: &str| {
            MessageHeader::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(build_error)
        };
        let message = Message::builder()
            .subject(text(&email.subject)?)
            .body(
                Body::builder()
                    .html(text(&email.html)?)
                    .text(text(&email.text)?)
                    .build(),
            )
            .headers(header("List-Unsubscribe", &format!("<{unsubscribe}>"))?)
            .headers(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click",
            )?)
            .build();
        self.client
            .send_email()
            .from_email_address(&self.sender)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| classify_redacted("SESv2 SendEmail", e))?;
        Ok(())
    }
}
