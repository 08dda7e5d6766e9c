//! Access keys: those from the config, then those in the metadata store (the
//! development credential generated on first start).

use std::collections::HashMap;
use std::sync::Arc;

use rand::Rng;
use rand::distr::Alphanumeric;
use strata_core::config::CredentialConfig;
use strata_core::{CpResult, Credential, Scope};
use strata_store::{MetaStore, StoredCredential};

/// Resolves access keys: keys from the config first, then keys stored in the
/// metadata (the generated development credential).
pub struct Identity {
    configured: HashMap<String, Credential>,
    store: Arc<dyn MetaStore>,
}

/// A credential created on first start, to be shown to the operator once.
pub struct Bootstrap {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Identity {
    pub fn new(configs: &[CredentialConfig], store: Arc<dyn MetaStore>) -> Identity {
        let configured = configs
            .iter()
            .map(|c| {
                let scope = if c.unrestricted {
                    Scope::Unrestricted
                } else {
                    Scope::Buckets(c.buckets.clone())
                };
                let cred = Credential {
                    access_key_id: c.access_key_id.clone(),
                    secret_access_key: c.secret_access_key.clone(),
                    scope,
                };
                (c.access_key_id.clone(), cred)
            })
            .collect();
        Identity { configured, store }
    }

    /// With no configured keys and none stored, creates one unrestricted
    /// development credential and returns it (once; later starts return `None`).
    pub async fn bootstrap(&self) -> CpResult<Option<Bootstrap>> {
        if !self.configured.is_empty() || self.store.count_credentials().await? > 0 {
            return Ok(None);
        }
        let access_key_id = format!("SK{}", random_string(18).to_uppercase());
        let secret_access_key = random_string(40);
        self.store
            .insert_credential(&StoredCredential {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                unrestricted: true,
            })
            .await?;
        Ok(Some(Bootstrap {
            access_key_id,
            secret_access_key,
        }))
    }

    pub async fn get(&self, access_key_id: &str) -> CpResult<Option<Credential>> {
        if let Some(c) = self.configured.get(access_key_id) {
            return Ok(Some(c.clone()));
        }
        Ok(self.store.get_credential(access_key_id).await?.map(|s| Credential {
            access_key_id: s.access_key_id,
            secret_access_key: s.secret_access_key,
            scope: if s.unrestricted {
                Scope::Unrestricted
            } else {
                Scope::Buckets(Vec::new())
            },
        }))
    }
}

fn random_string(n: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect()
}
