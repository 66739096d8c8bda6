//! The handshake's messages and the two roles. Transport-free: the responder turns JSON
//! values into JSON values, the initiator's steps do the same, and [`Initiator::run`] ties
//! them to HTTP. Every message is parsed strictly (unknown fields refused) and bounded.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_identity::{
    Capabilities, Chain, Did, IssuerKeys, KeyPair, PublicKeys, Signature, SignatureJson, Verifier,
    VerifyOptions, b64, canonical, from_b64, unix_now, verify_chain,
};

use super::grant::Grant;
use super::http::post_json;
use super::nonces::NonceStore;
use crate::store::{Score, TrustStore};

/// The protocol version every message names.
pub const HANDSHAKE_VERSION: &str = "warden-handshake/1";
const INITIATOR_DOMAIN: &str = "warden/handshake/initiator/v1";
const RESPONDER_DOMAIN: &str = "warden/handshake/responder/v1";
const COOKIE_CONTEXT: &str = "warden handshake challenge cookie v1";

/// Step 1, initiator → responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// [`HANDSHAKE_VERSION`].
    pub version: String,
    /// The initiator's DID.
    pub initiator: String,
    /// 32 random bytes, base64url.
    pub nonce: String,
    /// What the initiator asks to be allowed.
    pub capabilities: Vec<String>,
}

/// Step 2, responder → initiator: everything both signatures will cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// [`HANDSHAKE_VERSION`].
    pub version: String,
    /// The initiator's DID.
    pub initiator: String,
    /// The initiator's nonce.
    pub initiator_nonce: String,
    /// The responder's DID.
    pub responder: String,
    /// The responder's nonce (32 random bytes, base64url).
    pub responder_nonce: String,
    /// What was asked.
    pub capabilities: Vec<String>,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the proof must arrive before.
    pub expires_at: u64,
    /// The responder's MAC over every field above (so it stores nothing until step 3).
    pub cookie: String,
}

/// Step 3, initiator → responder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// The challenge, as received.
    pub challenge: Challenge,
    /// The initiator's credential chain (its JSON form).
    pub chain: Value,
    /// The initiator's public keys (they must hash to its DID).
    pub keys: IssuerKeys,
    /// The initiator's signature over the challenge.
    pub signature: SignatureJson,
}

/// Step 4, responder → initiator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantMessage {
    /// The grant.
    pub grant: Grant,
    /// The responder's credential chain.
    pub chain: Value,
    /// The responder's public keys.
    pub keys: IssuerKeys,
    /// The responder's signature over the challenge and the grant.
    pub signature: SignatureJson,
}

/// What the initiator ends up with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The peer (responder).
    pub peer: Did,
    /// Who issued the peer's chain.
    pub peer_root: Did,
    /// The session id.
    pub session: String,
    /// Granted capabilities.
    pub capabilities: Vec<String>,
    /// The session's ceiling.
    pub ceiling: u16,
    /// Unix seconds.
    pub expires_at: u64,
    /// The peer's trust in *this* side's records (none kept: `None`).
    pub peer_trust: Option<Score>,
}

fn keys_json(k: &PublicKeys) -> IssuerKeys {
    IssuerKeys {
        ed25519: b64(&k.ed25519()),
        ml_dsa_65: k.ml_dsa_65().map(b64),
    }
}

fn keys_of(k: &IssuerKeys, did: &str, who: &str) -> Result<PublicKeys, String> {
    let ed = from_b64(&k.ed25519).map_err(|e| format!("the {who}'s keys: {e}"))?;
    let ml = k
        .ml_dsa_65
        .as_deref()
        .map(from_b64)
        .transpose()
        .map_err(|e| format!("the {who}'s keys: {e}"))?;
    let pk =
        PublicKeys::from_bytes(&ed, ml.as_deref()).map_err(|e| format!("the {who}'s keys: {e}"))?;
    if pk.did().as_str() != did {
        return Err(format!(
            "the keys presented are not those of {did} (they belong to {}): wrong key",
            pk.did()
        ));
    }
    Ok(pk)
}

fn nonce() -> Result<String, String> {
    let mut n = [0u8; 32];
    getrandom::fill(&mut n).map_err(|e| format!("no random nonce: {e}"))?;
    Ok(b64(&n))
}

fn check_nonce(n: &str, what: &str) -> Result<(), String> {
    match from_b64(n) {
        Ok(b) if b.len() == 32 => Ok(()),
        _ => Err(format!("{what} must be 32 bytes, base64url")),
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("not a handshake {what}: {e}"))
}

/// The value a signature covers: canonical JSON of `value`.
fn signed<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_value(value)
        .map(|v| canonical(&v))
        .map_err(|e| e.to_string())
}

/// The responder's side (what `warden serve --identity` runs).
pub struct Responder {
    key: KeyPair,
    chain: Chain,
    chain_ceiling: u16,
    chain_expires: u64,
    cookie_key: [u8; 32],
    nonces: NonceStore,
    /// How long a challenge may be answered. Default 30 s.
    pub challenge_ttl: Duration,
    /// How long a granted session lasts (never beyond either chain). Default 5 minutes.
    pub session_ttl: Duration,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder({})", self.key.did())
    }
}

/// Why a proof was refused: the reason, and who claimed to ask (for the audit record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The initiator the proof named, if it got that far.
    pub initiator: Option<String>,
    /// Why.
    pub reason: String,
}

impl Responder {
    /// A responder with this identity, presenting `chain` (which must be issued to it), and
    /// recording answered nonces in `nonces`.
    pub fn new(key: KeyPair, chain: Chain, nonces: NonceStore) -> Result<Self, String> {
        if chain.subject() != key.did() {
            return Err(format!(
                "the credential is issued to {}, not to this identity ({})",
                chain.subject(),
                key.did()
            ));
        }
        let own = verify_chain(
            &chain,
            &VerifyOptions::unpinned(),
            unix_now(),
            &warden_identity::NoRevocations,
        )
        .map_err(|e| format!("this identity's own credential does not verify: {e}"))?;
        let mut cookie_key = [0u8; 32];
        getrandom::fill(&mut cookie_key).map_err(|e| e.to_string())?;
        Ok(Responder {
            key,
            chain,
            chain_ceiling: own.ceiling,
            chain_expires: own.expires_at,
            cookie_key: blake3::derive_key(COOKIE_CONTEXT, &cookie_key),
            nonces,
            challenge_ttl: Duration::from_secs(30),
            session_ttl: Duration::from_secs(300),
        })
    }

    /// This side's DID.
    pub fn did(&self) -> &Did {
        self.key.did()
    }

    /// This side's keys (to initiate handshakes as the same identity).
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// This side's credential.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The seen-nonce store.
    pub fn nonces(&self) -> &NonceStore {
        &self.nonces
    }

    fn cookie(&self, c: &Challenge) -> Result<[u8; 32], String> {
        let mut v = serde_json::to_value(c).map_err(|e| e.to_string())?;
        if let Value::Object(m) = &mut v {
            m.remove("cookie");
        }
        Ok(*blake3::keyed_hash(&self.cookie_key, canonical(&v).as_bytes()).as_bytes())
    }

    /// Step 2: answer a hello with a challenge. Stores nothing.
    pub fn challenge(&self, hello: &Value, now: u64) -> Result<Challenge, String> {
        let h: Hello = parse(hello, "hello")?;
        if h.version != HANDSHAKE_VERSION {
            return Err(format!(
                "unknown version (this side speaks {HANDSHAKE_VERSION})"
            ));
        }
        Did::parse(&h.initiator).map_err(|e| format!("initiator: {e}"))?;
        check_nonce(&h.nonce, "nonce")?;
        let caps =
            Capabilities::parse(&h.capabilities).map_err(|e| format!("capabilities: {e}"))?;
        if caps.is_empty() {
            return Err("no capabilities asked for".into());
        }
        let mut c = Challenge {
            version: HANDSHAKE_VERSION.into(),
            initiator: h.initiator,
            initiator_nonce: h.nonce,
            responder: self.key.did().to_string(),
            responder_nonce: nonce()?,
            capabilities: h.capabilities,
            issued_at: now,
            expires_at: now + self.challenge_ttl.as_secs(),
            cookie: String::new(),
        };
        c.cookie = b64(&self.cookie(&c)?);
        Ok(c)
    }

    /// Step 4: check a proof and grant a session.
    pub fn complete(
        &self,
        proof: &Value,
        verifier: &Verifier,
        trust: Option<&TrustStore>,
        now: u64,
    ) -> Result<(GrantMessage, Option<Score>), Refusal> {
        self.complete_admitting(proof, verifier, trust, now, &|_| Ok(()))
    }

    /// [`Responder::complete`], asking `admit` about the authenticated initiator's verified
    /// chain before anything is stored or granted: the host's own standing checks (a kill
    /// switch for the initiator or anyone behind it) refuse with the reason it gives.
    pub fn complete_admitting(
        &self,
        proof: &Value,
        verifier: &Verifier,
        trust: Option<&TrustStore>,
        now: u64,
        admit: &dyn Fn(&warden_identity::Verified) -> Result<(), String>,
    ) -> Result<(GrantMessage, Option<Score>), Refusal> {
        let refuse = |initiator: Option<&str>, reason: String| Refusal {
            initiator: initiator.map(str::to_string),
            reason,
        };
        let p: Proof = parse(proof, "proof").map_err(|e| refuse(None, e))?;
        let c = &p.challenge;
        let who = Some(c.initiator.as_str());
        let mac = self.cookie(c).map_err(|e| refuse(who, e))?;
        let given = from_b64(&c.cookie).unwrap_or_default();
        // blake3::Hash compares in constant time.
        if given.len() != 32
            || blake3::Hash::from(mac)
                != blake3::Hash::from(<[u8; 32]>::try_from(given.as_slice()).unwrap_or_default())
        {
            return Err(refuse(
                who,
                "the challenge was not issued by this responder, or was edited (its cookie does \
                 not match)"
                    .into(),
            ));
        }
        if now >= c.expires_at {
            return Err(refuse(
                who,
                format!("the challenge expired at {} (now {now})", c.expires_at),
            ));
        }
        let keys = keys_of(&p.keys, &c.initiator, "initiator").map_err(|e| refuse(who, e))?;
        let sig = Signature::from_json(&p.signature).map_err(|e| refuse(who, e))?;
        let msg = signed(c).map_err(|e| refuse(who, e))?;
        keys.verify(INITIATOR_DOMAIN, msg.as_bytes(), &sig)
            .map_err(|e| {
                refuse(
                    who,
                    format!("the initiator's signature does not verify: {e}"),
                )
            })?;
        let chain = verifier.verify_presented(&p.chain, now).map_err(|e| {
            refuse(
                who,
                format!("the initiator's credential does not verify: {e}"),
            )
        })?;
        if chain.subject.as_str() != c.initiator {
            return Err(refuse(
                who,
                format!(
                    "the credential is issued to {}, not to the initiator {}",
                    chain.subject, c.initiator
                ),
            ));
        }
        admit(&chain).map_err(|e| refuse(who, e))?;
        // Only now, with the initiator authenticated, is anything stored.
        match self.nonces.first_use(&c.responder_nonce, c.expires_at, now) {
            Ok(true) => {}
            Ok(false) => {
                return Err(refuse(
                    who,
                    "replayed: this challenge was already answered".into(),
                ));
            }
            Err(e) => return Err(refuse(who, e.to_string())),
        }
        let asked = Capabilities::parse(&c.capabilities).map_err(|e| refuse(who, e))?;
        let granted = asked.intersect(&chain.capabilities);
        if granted.is_empty() {
            return Err(refuse(
                who,
                format!(
                    "none of the capabilities asked for ({asked}) is granted by the initiator's \
                     credential ({})",
                    chain.capabilities
                ),
            ));
        }
        let mut session = [0u8; 16];
        getrandom::fill(&mut session).map_err(|e| refuse(who, e.to_string()))?;
        let grant = Grant {
            session: warden_audit::to_hex(&session),
            initiator: c.initiator.clone(),
            responder: self.key.did().to_string(),
            initiator_nonce: c.initiator_nonce.clone(),
            responder_nonce: c.responder_nonce.clone(),
            capabilities: granted.to_strings(),
            ceiling: chain.ceiling.min(self.chain_ceiling),
            issued_at: now,
            expires_at: (now + self.session_ttl.as_secs())
                .min(chain.expires_at)
                .min(self.chain_expires),
        };
        let body = serde_json::json!({"challenge": c, "grant": &grant});
        let sig = self
            .key
            .sign(RESPONDER_DOMAIN, canonical(&body).as_bytes())
            .map_err(|e| refuse(who, e.to_string()))?;
        if let Err(e) = self.nonces.record_session(&grant) {
            tracing::warn!("handshake session not recorded: {e}");
        }
        let score = match trust {
            Some(t) => Some(
                t.score(&c.initiator, chain.ceiling)
                    .map_err(|e| refuse(who, e.to_string()))?,
            ),
            None => None,
        };
        Ok((
            GrantMessage {
                grant,
                chain: self.chain.to_value(),
                keys: keys_json(self.key.public()),
                signature: sig.to_json(),
            },
            score,
        ))
    }
}

/// The initiator's side: its identity, credential, the roots it trusts, its own records.
pub struct Initiator<'a> {
    /// This side's keys.
    pub key: &'a KeyPair,
    /// This side's credential (issued to `key`).
    pub chain: &'a Chain,
    /// How the peer's chain is verified (this side's roots).
    pub verifier: &'a Verifier,
    /// This side's trust records, for the peer's score.
    pub trust: Option<&'a TrustStore>,
    /// The peer's bearer token, when its server wants one.
    pub token: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// Refuse any peer but this one.
    pub expect: Option<Did>,
}

/// A handshake under way on the initiator's side.
#[derive(Debug, Clone)]
pub struct Pending {
    nonce: String,
    capabilities: Vec<String>,
    challenge: Option<Challenge>,
}

impl Initiator<'_> {
    /// Step 1.
    pub fn hello(&self, capabilities: &[String]) -> Result<(Value, Pending), String> {
        Capabilities::parse(capabilities).map_err(|e| format!("capabilities: {e}"))?;
        let n = nonce()?;
        let h = Hello {
            version: HANDSHAKE_VERSION.into(),
            initiator: self.key.did().to_string(),
            nonce: n.clone(),
            capabilities: capabilities.to_vec(),
        };
        Ok((
            serde_json::to_value(h).map_err(|e| e.to_string())?,
            Pending {
                nonce: n,
                capabilities: capabilities.to_vec(),
                challenge: None,
            },
        ))
    }

    /// Step 3: check the challenge is an answer to *this* hello, and sign it.
    pub fn prove(
        &self,
        pending: &mut Pending,
        challenge: &Value,
        now: u64,
    ) -> Result<Value, String> {
        let c: Challenge = parse(challenge, "challenge")?;
        if c.version != HANDSHAKE_VERSION {
            return Err("the peer speaks another handshake version".into());
        }
        if c.initiator != self.key.did().as_str() || c.initiator_nonce != pending.nonce {
            return Err(
                "the challenge answers another handshake (initiator or nonce differ)".into(),
            );
        }
        if c.capabilities != pending.capabilities {
            return Err("the challenge names other capabilities than were asked".into());
        }
        Did::parse(&c.responder).map_err(|e| format!("responder: {e}"))?;
        if let Some(want) = &self.expect
            && want.as_str() != c.responder
        {
            return Err(format!(
                "the peer is {}, not the expected {want}",
                c.responder
            ));
        }
        if now >= c.expires_at {
            return Err("the challenge is already expired".into());
        }
        let sig = self
            .key
            .sign(INITIATOR_DOMAIN, signed(&c)?.as_bytes())
            .map_err(|e| e.to_string())?;
        let proof = Proof {
            challenge: c.clone(),
            chain: self.chain.to_value(),
            keys: keys_json(self.key.public()),
            signature: sig.to_json(),
        };
        pending.challenge = Some(c);
        serde_json::to_value(proof).map_err(|e| e.to_string())
    }

    /// Step 5: check the grant answers *this* handshake and is signed by the peer, whose
    /// chain this side verifies itself.
    pub fn finish(&self, pending: &Pending, answer: &Value, now: u64) -> Result<Session, String> {
        let c = pending
            .challenge
            .as_ref()
            .ok_or("no challenge was answered yet")?;
        let m: GrantMessage = parse(answer, "grant")?;
        let g = &m.grant;
        if g.initiator_nonce != pending.nonce || g.responder_nonce != c.responder_nonce {
            return Err(
                "the grant answers another handshake (its nonces are not this handshake's): \
                 replayed or relayed"
                    .into(),
            );
        }
        if g.initiator != c.initiator || g.responder != c.responder {
            return Err("the grant names other parties than the challenge".into());
        }
        let keys = keys_of(&m.keys, &c.responder, "responder")?;
        let sig = Signature::from_json(&m.signature)?;
        let body = serde_json::json!({"challenge": c, "grant": g});
        keys.verify(RESPONDER_DOMAIN, canonical(&body).as_bytes(), &sig)
            .map_err(|e| format!("the responder's signature does not verify: {e}"))?;
        let chain = self
            .verifier
            .verify_presented(&m.chain, now)
            .map_err(|e| format!("the responder's credential does not verify: {e}"))?;
        if chain.subject.as_str() != c.responder {
            return Err(format!(
                "the responder's credential is issued to {}, not to {}",
                chain.subject, c.responder
            ));
        }
        let asked = Capabilities::parse(&pending.capabilities)?;
        let granted = Capabilities::parse(&g.capabilities)
            .map_err(|e| format!("granted capabilities: {e}"))?;
        if let Some(w) = asked.first_uncovered(&granted) {
            return Err(format!("the grant includes `{w}`, which was not asked for"));
        }
        if now >= g.expires_at {
            return Err("the grant is already expired".into());
        }
        let peer_trust = match self.trust {
            Some(t) => Some(
                t.score(&c.responder, chain.ceiling)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(Session {
            peer: chain.subject.clone(),
            peer_root: chain.root.clone(),
            session: g.session.clone(),
            capabilities: g.capabilities.clone(),
            ceiling: g.ceiling,
            expires_at: g.expires_at,
            peer_trust,
        })
    }

    /// The whole handshake with the `warden serve` at `peer` (`http://host:port`).
    pub fn run(&self, peer: &str, capabilities: &[String]) -> Result<Session, String> {
        let (hello, mut pending) = self.hello(capabilities)?;
        let token = self.token.as_deref();
        let (status, challenge) =
            post_json(peer, "/v1/handshake/challenge", &hello, token, self.timeout)
                .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(refused(status, &challenge));
        }
        let proof = self.prove(&mut pending, &challenge, unix_now())?;
        let (status, answer) =
            post_json(peer, "/v1/handshake/complete", &proof, token, self.timeout)
                .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(refused(status, &answer));
        }
        self.finish(&pending, &answer, unix_now())
    }
}

fn refused(status: u16, body: &Value) -> String {
    match body.get("error").and_then(Value::as_str) {
        Some(e) => format!("the peer refused (HTTP {status}): {e}"),
        None => format!("the peer answered HTTP {status}"),
    }
}
