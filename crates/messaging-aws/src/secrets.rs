//! Secrets Manager: the functions' secrets (the key that signs cursors and links, the token
//! verification key), read once when a function starts, never put in its environment.

use crate::error::{classify, AwsError};

#[derive(Clone, Debug)]
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }

    /// The current text of the secret `id` (its ARN or name).
    pub async fn value(&self, id: &str) -> Result<String, AwsError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| classify("SecretsManager GetSecretValue", e))?;
        output
            .secret_string
            .ok_or_else(|| AwsError::Failed(format!("secret {id} holds no text")))
    }

    /// Creates the secret `name` holding `value` (the local stack's stand-in for the template's
    /// secrets); its ARN.
    pub async fn create(&self, name: &str, value: &str) -> Result<String, AwsError> {
        let output = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| classify("SecretsManager CreateSecret", e))?;
        output
            .arn
            .ok_or_else(|| AwsError::Failed(format!("secret {name} was created without an ARN")))
    }
}
