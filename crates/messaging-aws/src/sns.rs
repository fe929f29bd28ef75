//! Push notifications and text messages through SNS `Publish`.

use crate::error::{classify_redacted, AwsError};

/// SNS's limit on a message subject.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Longest push body sent (a notification banner shows far less).
pub const MAX_PUSH_CHARS: usize = 2000;
/// Longest text message sent: one SMS segment, whatever the alphabet.
pub const MAX_SMS_CHARS: usize = 140;

#[derive(Debug, Clone)]
pub struct Sns {
    client: aws_sdk_sns::Client,
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

impl Sns {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }

    /// A push to a device's platform endpoint (subject and body cut to SNS's limits).
    pub async fn push(
        &self,
        endpoint_arn: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), AwsError> {
        self.client
            .publish()
            .target_arn(endpoint_arn)
            .subject(truncate(subject, MAX_SUBJECT_CHARS))
            .message(truncate(body, MAX_PUSH_CHARS))
            .send()
            .await
            .map_err(|e| classify_redacted("SNS Publish(push)", e))?;
        Ok(())
    }

    /// Whether the platform endpoint `endpoint_arn` exists, is enabled, and was registered for
    /// `owner` (its `CustomUserData`, set by whoever created the endpoint).
    pub async fn endpoint_belongs_to(
        &self,
        endpoint_arn: &str,
        owner: &str,
    ) -> Result<bool, AwsError> {
        let result = self
            .client
            .get_endpoint_attributes()
            .endpoint_arn(endpoint_arn)
            .send()
            .await;
        let attributes = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(e) => {
                use aws_sdk_sns::operation::get_endpoint_attributes::GetEndpointAttributesError as E;
                // No such endpoint: it belongs to nobody. Anything else (throttling, a policy
                // without sns:GetEndpointAttributes) is an error to see, not a "no".
                if matches!(
                    e.as_service_error(),
                    Some(E::NotFoundException(_) | E::InvalidParameterException(_))
                ) {
                    return Ok(false);
                }
                return Err(classify_redacted("SNS GetEndpointAttributes", e));
            }
        };
        Ok(attributes
            .get("Enabled")
            .is_some_and(|e| e.eq_ignore_ascii_case("true"))
            && attributes.get("CustomUserData").map(String::as_str) == Some(owner))
    }

    /// A text message to an E.164 phone number (cut to one segment).
    pub async fn text(&self, phone_number: &str, text: &str) -> Result<(), AwsError> {
        self.client
            .publish()
            .phone_number(phone_number)
            .message(truncate(text, MAX_SMS_CHARS))
            .send()
            .await
            .map_err(|e| classify_redacted("SNS Publish(SMS)", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(super::truncate("ééé", 2), "éé");
        assert_eq!(super::truncate("ab", 5), "ab");
    }
}
