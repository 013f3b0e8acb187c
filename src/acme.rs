//! `[tls.acme]`: parlor gets its own certificate from an ACME CA (RFC 8555) such as Let's
//! Encrypt, proving control of the domains by TLS-ALPN-01 (RFC 8737) on the HTTPS listener or by
//! HTTP-01 on the plain-HTTP one, and renews it at two thirds of its lifetime. A new certificate
//! is swapped into [`Tls`] as the SIGHUP reload does, so open connections keep theirs; a failed
//! attempt is retried with a doubling delay while the old certificate stays served.
//!
//! On disk, one subdirectory of `cache_dir` per CA holds `account.json` (the account key),
//! `cert.pem` (the chain) and `key.pem`, each mode 0600.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use instant_acme::{
    Account, AccountBuilder, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::sign::CertifiedKey;

use crate::challenges::{Challenges, ClearOnDrop};
use crate::config::{AcmeChallenge, AcmeConfig};
use crate::tls::{cert_info, CertInfo, Tls};

/// Longest wait between failed attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// One whole attempt (order, validation, certificate) gives up after this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
/// Long waits are taken in steps, so a wall clock that jumped (suspend, NTP) is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The certificate manager: the account, the cache, and where certificates go.
pub struct Manager {
    config: AcmeConfig,
    dir: PathBuf,
    tls: Arc<Tls>,
    challenges: Arc<Challenges>,
    account: Option<Account>,
    /// The certificate served now.
    current: Option<CertInfo>,
}

/// The cache subdirectory for a directory URL: readable, one per CA (a staging account or
/// certificate is no use with the production CA).
fn cache_subdir(cache_dir: &Path, directory: &str) -> PathBuf {
    let bare = directory.trim_start_matches("https://").trim_start_matches("http://");
    let name: String =
        bare.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    cache_dir.join(name)
}

/// Where the certificate chain for `config` is cached.
pub fn cached_chain(config: &AcmeConfig) -> PathBuf {
    cache_subdir(Path::new(&config.cache_dir), &config.directory).join("cert.pem")
}

/// Write `bytes` to `path` readable by the owner only, replacing it whole (a crash leaves the
/// old file or the new, never half of one).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("tls.acme.cache_dir: cannot write {}", tmp.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all())?;
    std::fs::rename(&tmp, path).with_context(|| format!("tls.acme.cache_dir: cannot write {}", path.display()))?;
    Ok(())
}

/// A chain and key (PEM) as rustls serves them.
fn certified_key(tls: &Tls, chain_pem: &[u8], key_pem: &[u8]) -> Result<(CertifiedKey, CertInfo)> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem).collect::<Result<_, _>>().context("not a PEM certificate chain")?;
    let leaf = chain.first().ok_or_else(|| anyhow!("no certificate in the chain"))?;
    let info = cert_info(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("not a PEM private key")?;
    let pair = CertifiedKey::from_der(chain, key, tls.provider()).map_err(|e| anyhow!("unusable pair: {e}"))?;
    Ok((pair, info))
}

/// The self-signed TLS-ALPN-01 certificate for `domain` (RFC 8737 §3): the domain as its only
/// name and the SHA-256 of the key authorization in the critical acmeIdentifier extension.
fn alpn_certificate(tls: &Tls, domain: &str, digest: &[u8]) -> Result<CertifiedKey> {
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // Not `from_der`: its check that key and certificate match parses the certificate with
    // webpki, which refuses the critical acmeIdentifier extension.
    let signer = tls.provider().key_provider.load_private_key(key).map_err(|e| anyhow!("TLS-ALPN-01 key: {e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

/// The wait after the next failure: doubled, at most [`MAX_BACKOFF`].
fn next_backoff(wait: Duration) -> Duration {
    (wait * 2).min(MAX_BACKOFF)
}

/// Whether the CA says our account is unknown (it was deactivated, or a test CA restarted).
fn account_gone(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref().is_some_and(|t| t.ends_with(":accountDoesNotExist")))
}

impl Manager {
    fn builder(&self) -> Result<AccountBuilder> {
        if self.config.ca_root.is_empty() {
            Account::builder().map_err(|e| anyhow!("no TLS roots to trust the ACME directory with: {e}"))
        } else {
            Account::builder_with_root(&self.config.ca_root).map_err(|e| {
                anyhow!("tls.acme.ca_root: cannot use {} as a PEM root certificate: {e}", self.config.ca_root)
            })
        }
    }

    /// The account from the cache, or a new one registered (and cached). Either way the
    /// directory is fetched, so a wrong URL shows here.
    async fn account(&mut self) -> Result<Account> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let path = self.dir.join("account.json");
        let directory = &self.config.directory;
        let context = || format!("tls.acme.directory: cannot use the ACME directory {directory}");
        let account = match std::fs::read(&path) {
            Ok(bytes) => {
                let credentials: AccountCredentials = serde_json::from_slice(&bytes)
                    .with_context(|| format!("tls.acme.cache_dir: {} is not an ACME account", path.display()))?;
                self.builder()?.from_credentials(credentials).await.with_context(context)?
            }
            Err(_) => {
                let mailto = format!("mailto:{}", self.config.contact);
                let contact: Vec<&str> = if self.config.contact.is_empty() { vec![] } else { vec![&mailto] };
                let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
                let (account, credentials) =
                    self.builder()?.create(&new, directory.clone(), None).await.with_context(context)?;
                write_private(&path, &serde_json::to_vec(&credentials)?)?;
                tracing::info!(directory = %directory, id = account.id(), "ACME account registered");
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// The cached certificate, served when it covers the domains and has not expired.
    fn load_cached(&mut self) {
        let (Ok(chain), Ok(key)) = (std::fs::read(self.dir.join("cert.pem")), std::fs::read(self.dir.join("key.pem")))
        else {
            return;
        };
        match certified_key(&self.tls, &chain, &key) {
            Ok((pair, info)) if info.covers(&self.config.domains) && info.not_after > SystemTime::now() => {
                tracing::info!(names = ?info.names, expires = %info.expires(), "ACME certificate from the cache");
                self.tls.set(pair);
                self.current = Some(info);
            }
            Ok((_, info)) => tracing::info!(names = ?info.names, "cached certificate expired or for other names"),
            Err(e) => tracing::warn!("cached certificate in {} unusable: {e:#}", self.dir.display()),
        }
    }

    /// One order: prove control of every domain, finalize, fetch the chain, serve and cache it.
    async fn renew(&mut self) -> Result<()> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self.config.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
        let order = match account.new_order(&NewOrder::new(&identifiers)).await {
            Err(e) if account_gone(&e) => {
                tracing::warn!("the CA no longer knows our ACME account; registering a new one");
                self.account = None;
                let _ = std::fs::remove_file(self.dir.join("account.json"));
                self.account().await?.new_order(&NewOrder::new(&identifiers)).await
            }
            other => other,
        };
        let mut order = order.context("new ACME order")?;
        let challenges = self.challenges.clone();
        let _clear = ClearOnDrop(&challenges);
        let kind = match self.config.challenge {
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            AcmeChallenge::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("ACME authorization")?;
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => bail!("ACME authorization for {} is {other:?}", authorization.identifier()),
            }
            let mut challenge = authorization
                .challenge(kind.clone())
                .ok_or_else(|| anyhow!("the CA does not offer the {kind:?} challenge"))?;
            let domain = challenge.identifier().to_string();
            let answer = challenge.key_authorization();
            match kind {
                ChallengeType::Http01 => {
                    challenges.set_http(challenge.token.clone(), answer.as_str().to_owned());
                }
                _ => {
                    let cert = alpn_certificate(&self.tls, &domain, answer.digest().as_ref())?;
                    challenges.set_alpn(&domain, Arc::new(cert));
                }
            }
            challenge.set_ready().await.with_context(|| format!("ACME challenge for {domain}"))?;
        }
        let patience = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&patience).await.context("waiting for the CA to validate")?;
        if status != OrderStatus::Ready {
            bail!("the CA did not validate the domains (order {status:?}){}", self.failures(&mut order).await);
        }
        let key_pem = order.finalize().await.context("finalizing the ACME order")?;
        let chain_pem = order.poll_certificate(&patience).await.context("fetching the certificate")?;
        let (pair, info) = certified_key(&self.tls, chain_pem.as_bytes(), key_pem.as_bytes())
            .context("the CA's certificate does not load")?;
        // Key first: a crash between the two leaves a pair that fails to load, never a chain
        // with the wrong key served.
        write_private(&self.dir.join("key.pem"), key_pem.as_bytes())?;
        write_private(&self.dir.join("cert.pem"), chain_pem.as_bytes())?;
        self.tls.set(pair);
        tracing::info!(names = ?info.names, expires = %info.expires(), "ACME certificate issued and served");
        self.current = Some(info);
        Ok(())
    }

    /// What the CA said about the failed challenges, for the log.
    async fn failures(&self, order: &mut instant_acme::Order) -> String {
        let mut out = String::new();
        let mut authorizations = order.authorizations();
        while let Some(Ok(authorization)) = authorizations.next().await {
            for challenge in &authorization.challenges {
                if let Some(problem) = &challenge.error {
                    out.push_str(&format!("; {}: {problem}", authorization.identifier()));
                }
            }
        }
        out
    }

    /// When the certificate in use should be replaced: at two thirds of its lifetime; now when
    /// there is none.
    fn renew_at(&self) -> SystemTime {
        self.current.as_ref().map_or(SystemTime::UNIX_EPOCH, CertInfo::renew_at)
    }

    async fn run(mut self) {
        let first_retry = Duration::from_secs_f64(self.config.retry_seconds);
        let mut backoff = first_retry;
        loop {
            let wait = self.renew_at().duration_since(SystemTime::now()).unwrap_or_default();
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(MAX_SLEEP)).await;
                continue;
            }
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.renew()).await {
                Ok(Ok(())) => backoff = first_retry,
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                    };
                    let serving = self.current.as_ref().map_or("nothing yet".to_owned(), |c| c.expires());
                    tracing::warn!(
                        retry_in_s = backoff.as_secs_f64(),
                        "ACME certificate failed, still serving the certificate valid until {serving}: {why}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = next_backoff(backoff);
                }
            }
        }
    }
}

/// Prepare the certificate manager: serve the cached certificate if it is still good, else
/// register or load the account now, so a wrong `directory` or `ca_root` fails the start with
/// a clear message. [`Manager::spawn`] then gets and renews the certificate.
pub async fn prepare(config: &AcmeConfig, tls: Arc<Tls>, challenges: Arc<Challenges>) -> Result<Manager> {
    let dir = cache_subdir(Path::new(&config.cache_dir), &config.directory);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("tls.acme.cache_dir: cannot create {}", dir.display()))?;
    let mut manager = Manager { config: config.clone(), dir, tls, challenges, account: None, current: None };
    manager.load_cached();
    if manager.current.is_none() {
        manager.account().await?;
    }
    Ok(manager)
}

impl Manager {
    /// Get the certificate if none is served, and renew it, in the background until the
    /// returned task is aborted. Call it once the listeners answering the challenges are up.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let mut wait = Duration::from_secs(60);
        let mut seen = vec![];
        for _ in 0..12 {
            seen.push(wait.as_secs());
            wait = next_backoff(wait);
        }
        assert_eq!(&seen[..4], &[60, 120, 240, 480]);
        assert_eq!(seen.last(), Some(&21_600));
        assert!(seen.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn cache_subdirectory_per_ca() {
        let root = Path::new("/var/lib/parlor");
        assert_eq!(
            cache_subdir(root, "https://acme-v02.api.letsencrypt.org/directory"),
            root.join("acme-v02.api.letsencrypt.org_directory")
        );
        assert_ne!(
            cache_subdir(root, "https://acme-staging-v02.api.letsencrypt.org/directory"),
            cache_subdir(root, "https://acme-v02.api.letsencrypt.org/directory")
        );
    }

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("parlor-acme-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn alpn_answers_only_named_domains() {
        let challenges = Challenges::default();
        let tls = Tls::for_acme(Arc::new(Challenges::default())).unwrap();
        let cert = alpn_certificate(&tls, "a.example", &[7u8; 32]).unwrap();
        challenges.set_alpn("a.example", Arc::new(cert));
        assert!(challenges.alpn_cert("A.Example").is_some());
        assert!(challenges.alpn_cert("b.example").is_none());
        challenges.set_http("tok".into(), "tok.thumb".into());
        assert_eq!(challenges.http_answer("tok").as_deref(), Some("tok.thumb"));
        challenges.clear();
        assert!(challenges.http_answer("tok").is_none() && challenges.alpn_cert("a.example").is_none());
    }
}
