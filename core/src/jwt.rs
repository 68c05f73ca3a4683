//! etcd's JWT auth tokens (`--auth-token jwt,pub-key=..,priv-key=..,sign-method=..,ttl=..`):
//! signed by the member that checks the password, verified by any member with the key, so
//! a token outlives a restart and is good on every member. A token names the user and the
//! auth revision it was signed at, and expires `ttl` after (use does not renew it, unlike a
//! simple token). The claims are etcd's: `username`, `revision`, `exp`.

use crate::auth::AuthInfo;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// etcd's default lifetime of a JWT token.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The options of `--auth-token jwt,...`, as given (keys are read at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtOptions {
    pub sign_method: String,
    pub pub_key: Option<PathBuf>,
    pub priv_key: Option<PathBuf>,
    pub ttl: Duration,
}

/// Why `--auth-token` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    UnknownOption(String),
    BadTtl(String),
    UnknownSignMethod(String),
    /// A key the sign method needs is not given.
    MissingKey(&'static str),
    /// A key file that cannot be read or parsed.
    BadKey {
        file: PathBuf,
        cause: String,
    },
    /// The public key does not verify what the private key signs.
    KeyMismatch,
    /// No private key: this member verifies tokens but cannot hand them out.
    VerifyOnly,
    Sign(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::UnknownOption(o) => write!(f, "unknown token option {o:?}"),
            JwtError::BadTtl(t) => write!(f, "ttl {t:?} is not a duration"),
            JwtError::UnknownSignMethod(m) => write!(f, "unknown sign-method {m:?}"),
            JwtError::MissingKey(k) => write!(f, "{k} is required by this sign-method"),
            JwtError::BadKey { file, cause } => write!(f, "{}: {cause}", file.display()),
            JwtError::KeyMismatch => f.write_str("pub-key does not verify what priv-key signs"),
            JwtError::VerifyOnly => f.write_str("no priv-key: this member only verifies tokens"),
            JwtError::Sign(e) => write!(f, "cannot sign a token: {e}"),
        }
    }
}

impl JwtOptions {
    /// The options after `jwt,` in `--auth-token` (comma-separated `name=value`).
    pub fn parse(options: &str) -> Result<JwtOptions, JwtError> {
        let mut o = JwtOptions {
            sign_method: String::new(),
            pub_key: None,
            priv_key: None,
            ttl: DEFAULT_TTL,
        };
        for part in options.split(',').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            match name {
                "sign-method" => o.sign_method = value.to_string(),
                "pub-key" => o.pub_key = Some(value.into()),
                "priv-key" => o.priv_key = Some(value.into()),
                "ttl" => {
                    o.ttl = humantime::parse_duration(value)
                        .map_err(|_| JwtError::BadTtl(value.to_string()))?
                }
                _ => return Err(JwtError::UnknownOption(name.to_string())),
            }
        }
        algorithm(&o.sign_method)?;
        Ok(o)
    }
}

fn algorithm(sign_method: &str) -> Result<Algorithm, JwtError> {
    match sign_method.parse::<Algorithm>() {
        Ok(Algorithm::EdDSA) | Err(_) => Err(JwtError::UnknownSignMethod(sign_method.into())),
        Ok(a) => Ok(a),
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

/// A member's JWT signer and verifier.
pub struct JwtTokens {
    algorithm: Algorithm,
    /// None: verify-only (no priv-key).
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokens")
            .field("algorithm", &self.algorithm)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtTokens {
    /// Read and check the keys. RSA and ECDSA keys are PEM (PKCS#1 or PKCS#8 private,
    /// SPKI public); for HMAC, priv-key's bytes are the secret.
    pub fn load(o: &JwtOptions) -> Result<JwtTokens, JwtError> {
        let algorithm = algorithm(&o.sign_method)?;
        let read = |file: &PathBuf| {
            std::fs::read(file).map_err(|e| JwtError::BadKey {
                file: file.clone(),
                cause: e.to_string(),
            })
        };
        let bad = |file: &PathBuf| {
            let file = file.clone();
            move |e: jsonwebtoken::errors::Error| JwtError::BadKey {
                file,
                cause: e.to_string(),
            }
        };
        let (signing, verifying) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let file = o
                    .priv_key
                    .as_ref()
                    .ok_or(JwtError::MissingKey("priv-key"))?;
                let secret = read(file)?;
                (
                    Some(EncodingKey::from_secret(&secret)),
                    DecodingKey::from_secret(&secret),
                )
            }
            _ => {
                let rsa = !matches!(algorithm, Algorithm::ES256 | Algorithm::ES384);
                // Verifying needs the public key: ring cannot derive it from a PEM here.
                let file = o.pub_key.as_ref().ok_or(JwtError::MissingKey("pub-key"))?;
                let pem = read(file)?;
                let verifying = if rsa {
                    DecodingKey::from_rsa_pem(&pem)
                } else {
                    DecodingKey::from_ec_pem(&pem)
                }
                .map_err(bad(file))?;
                let signing = match &o.priv_key {
                    None => None,
                    Some(file) => {
                        let pem = read(file)?;
                        Some(
                            if rsa {
                                EncodingKey::from_rsa_pem(&pem)
                            } else {
                                EncodingKey::from_ec_pem(&pem)
                            }
                            .map_err(bad(file))?,
                        )
                    }
                };
                (signing, verifying)
            }
        };
        let mut validation = Validation::new(algorithm);
        // etcd checks exp as it is, with no grace.
        validation.leeway = 0;
        let tokens = JwtTokens {
            algorithm,
            signing,
            verifying,
            validation,
            ttl: o.ttl,
        };
        if tokens.signing.is_some() {
            let probe = tokens.assign("", 0)?;
            if tokens.info(&probe).is_none() {
                return Err(JwtError::KeyMismatch);
            }
        }
        Ok(tokens)
    }

    /// A token for `username` at auth revision `revision`.
    pub fn assign(&self, username: &str, revision: u64) -> Result<String, JwtError> {
        let key = self.signing.as_ref().ok_or(JwtError::VerifyOnly)?;
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + self.ttl;
        let claims = Claims {
            username: username.to_string(),
            revision,
            exp: exp.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .map_err(|e| JwtError::Sign(e.to_string()))
    }

    /// Who a token names, if this member's key signed it, with its own sign method, and it
    /// has not expired.
    pub fn info(&self, token: &str) -> Option<AuthInfo> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.verifying, &self.validation).ok()?;
        Some(AuthInfo {
            username: data.claims.username,
            revision: data.claims.revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (public, private) = (dir.join("jwt.pub"), dir.join("jwt.key"));
        std::fs::write(&public, pair.public_key_pem()).unwrap();
        std::fs::write(&private, pair.serialize_pem()).unwrap();
        (public, private)
    }

    #[test]
    fn options_are_etcds_and_bad_ones_are_named() {
        let o =
            JwtOptions::parse("pub-key=a.pub,priv-key=a.key,sign-method=RS256,ttl=10m").unwrap();
        assert_eq!(o.sign_method, "RS256");
        assert_eq!(o.ttl, Duration::from_secs(600));
        assert_eq!(o.pub_key, Some("a.pub".into()));
        assert_eq!(
            JwtOptions::parse("sign-method=RS256,colour=red"),
            Err(JwtError::UnknownOption("colour".into()))
        );
        assert_eq!(
            JwtOptions::parse("pub-key=a"),
            Err(JwtError::UnknownSignMethod("".into()))
        );
        assert_eq!(
            JwtOptions::parse("sign-method=ES256,ttl=soon"),
            Err(JwtError::BadTtl("soon".into()))
        );
    }

    #[test]
    fn a_token_names_its_user_until_it_expires_and_only_for_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let (public, private) = keys(dir.path());
        let mut o = JwtOptions {
            sign_method: "ES256".into(),
            pub_key: Some(public.clone()),
            priv_key: Some(private),
            ttl: DEFAULT_TTL,
        };
        let tokens = JwtTokens::load(&o).unwrap();
        let t = tokens.assign("alice", 7).unwrap();
        assert_eq!(
            tokens.info(&t),
            Some(AuthInfo {
                username: "alice".into(),
                revision: 7
            })
        );
        assert_eq!(tokens.info("not.a.token"), None);
        // Expired: refused (exp is in whole seconds).
        o.ttl = Duration::ZERO;
        let expired = JwtTokens::load(&o).unwrap().assign("alice", 7).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(tokens.info(&expired), None);
        // Another key pair's token is not this member's.
        let other = tempfile::tempdir().unwrap();
        let (other_public, other_private) = keys(other.path());
        let stranger = JwtTokens::load(&JwtOptions {
            sign_method: "ES256".into(),
            pub_key: Some(other_public.clone()),
            priv_key: Some(other_private),
            ttl: DEFAULT_TTL,
        })
        .unwrap();
        assert_eq!(tokens.info(&stranger.assign("alice", 7).unwrap()), None);
        // Verify-only: checks tokens, hands none out.
        let verifier = JwtTokens::load(&JwtOptions {
            priv_key: None,
            ttl: DEFAULT_TTL,
            ..o.clone()
        })
        .unwrap();
        assert_eq!(verifier.info(&t).unwrap().username, "alice");
        assert_eq!(verifier.assign("alice", 7), Err(JwtError::VerifyOnly));
        // Keys that do not belong together are refused at start.
        let mismatched = JwtOptions {
            pub_key: Some(other_public),
            ..o.clone()
        };
        assert_eq!(
            JwtTokens::load(&mismatched).unwrap_err(),
            JwtError::KeyMismatch
        );
        let missing = JwtOptions {
            pub_key: Some(dir.path().join("nope.pub")),
            ..o
        };
        assert!(matches!(
            JwtTokens::load(&missing).unwrap_err(),
            JwtError::BadKey { .. }
        ));
    }
}
