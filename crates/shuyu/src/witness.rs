//! `shuyu audit witness`: a supervisor's witness. It has the platform sign a
//! checkpoint of its log as it is now (or takes the latest one), checks its signature with the log key pinned at first
//! contact, checks that it extends the last checkpoint this witness saw (a
//! consistency proof), countersigns it and sends the cosignature back. Two
//! checkpoints that are not consistent — the operator showing a different
//! history — are reported loudly, with the evidence written next to the state.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use shuyu_audit::checkpoint::{Checkpoint, Cosignature, key_id, parse_public_key_pem};
use shuyu_audit::merkle::verify_consistency;
use shuyu_ledger::ConsistencyProof;

use crate::Exit;

/// What a witness remembers between runs (its state file, mode 0600).
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// The witness's name, as shown to others.
    witness: String,
    /// The witness's Ed25519 secret key (hex).
    witness_key: String,
    /// The log's origin, pinned at first contact.
    log_origin: Option<String>,
    /// The log's public key (PEM), pinned at first contact.
    log_public_key: Option<String>,
    /// The last checkpoint verified and cosigned.
    checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Deserialize)]
struct PublicKeyDto {
    origin: String,
    public_key: String,
}

#[derive(Debug, Deserialize)]
struct CheckpointView {
    checkpoint: Checkpoint,
}

fn load_or_create(path: &Path, name: Option<&str>) -> Result<State> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the witness state {}", path.display()))?;
        let mut state: State =
            serde_json::from_str(&text).with_context(|| format!("{} is not a witness state file", path.display()))?;
        if let Some(n) = name {
            state.witness = n.to_string();
        }
        return Ok(state);
    }
    let key = shuyu_identity::secrets::random_bytes::<32>()?;
    Ok(State {
        witness: name.unwrap_or("witness").to_string(),
        witness_key: hex::encode(key),
        log_origin: None,
        log_public_key: None,
        checkpoint: None,
    })
}

fn save(path: &Path, state: &State) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    crate::write_private(&tmp, serde_json::to_string_pretty(state)?.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot save {}", path.display()))?;
    Ok(())
}

fn fork(
    state_path: &Path,
    what: String,
    old: &Checkpoint,
    new: &Checkpoint,
    proof: Option<&ConsistencyProof>,
) -> anyhow::Error {
    let evidence = state_path.with_extension(format!("fork-{}.json", new.time));
    let doc = serde_json::json!({ "problem": what, "previous": old, "current": new, "consistency_proof": proof });
    let saved = serde_json::to_string_pretty(&doc)
        .ok()
        .and_then(|t| std::fs::write(&evidence, t).ok())
        .is_some();
    let mut msg = format!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!  FORK DETECTED: the log is not consistent with what this witness saw  !!\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         {what}\n  previous: size {} root {}\n  current:  size {} root {}\n",
        old.size, old.root, new.size, new.root
    );
    if saved {
        msg.push_str(&format!("  evidence: {}\n", evidence.display()));
    }
    msg.push_str("This checkpoint was NOT cosigned. Report it to the data authority and keep the evidence.");
    Exit::new(3, msg).into()
}

/// Runs one witnessing round.
pub async fn run(
    url: &str,
    state_path: &Path,
    token: &str,
    name: Option<&str>,
    pinned_key: Option<&Path>,
) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = url.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .build()
        .context("cannot build the HTTP client")?;
    let mut state = load_or_create(state_path, name)?;
    let witness_key = SigningKey::from_bytes(
        &hex::decode(&state.witness_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("the witness key in the state file is damaged"))?,
    );

    // The log's key: pinned in the state after first contact (or given explicitly).
    let served: PublicKeyDto = http
        .get(format!("{base}/api/v1/audit/public-key"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("cannot reach {base}"))?
        .json()
        .await?;
    if let Some(p) = pinned_key {
        let pem = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        if state.log_public_key.as_deref().is_some_and(|k| k.trim() != pem.trim()) {
            return Err(Exit::new(3, "the --log-key differs from the key pinned in the state file".into()).into());
        }
        state.log_public_key = Some(pem);
    }
    let pinned = state
        .log_public_key
        .get_or_insert_with(|| served.public_key.clone())
        .clone();
    let origin = state.log_origin.get_or_insert_with(|| served.origin.clone()).clone();
    if pinned.trim() != served.public_key.trim() || origin != served.origin {
        return Err(Exit::new(
            3,
            format!(
                "KEY CHANGED: {base} now serves log key/origin {} but this witness pinned {origin}; not cosigning",
                served.origin
            ),
        )
        .into());
    }
    let log_key = parse_public_key_pem(&pinned)?;

    // Ask for a checkpoint of the log as it is now; a witness without that right takes the latest one.
    let fresh = http
        .post(format!("{base}/api/v1/audit/checkpoint"))
        .bearer_auth(token)
        .send()
        .await?;
    let res = if fresh.status().is_success() {
        fresh
    } else {
        http.get(format!("{base}/api/v1/audit/checkpoint"))
            .bearer_auth(token)
            .send()
            .await?
    };
    let view: CheckpointView = res
        .error_for_status()
        .context("the platform refused to show its checkpoint (is the token a supervisor's?)")?
        .json()
        .await?;
    let new = view.checkpoint;
    new.verify(&log_key)
        .map_err(|e| Exit::new(3, format!("BAD SIGNATURE on the served checkpoint: {e}")))?;
    if new.origin != origin {
        return Err(Exit::new(3, format!("the checkpoint is for log {} not {origin}", new.origin)).into());
    }

    let mut since = String::from("first checkpoint seen");
    if let Some(old) = &state.checkpoint {
        let (old_root, new_root) = (old.root_hash()?, new.root_hash()?);
        if new.size < old.size {
            return Err(fork(
                state_path,
                format!("the log shrank from {} to {} entries", old.size, new.size),
                old,
                &new,
                None,
            ));
        }
        if new.size == old.size {
            if new_root != old_root {
                return Err(fork(
                    state_path,
                    "two different roots for the same size".into(),
                    old,
                    &new,
                    None,
                ));
            }
        } else {
            let proof: ConsistencyProof = http
                .get(format!(
                    "{base}/api/v1/audit/proofs/consistency?first={}&second={}",
                    old.size, new.size
                ))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let hashes = shuyu_ledger::decode_hashes(&proof.proof).unwrap_or_default();
            // The roots come from the signed checkpoints, never from the proof response.
            if !verify_consistency(old.size, new.size, &old_root, &new_root, &hashes) {
                return Err(fork(
                    state_path,
                    format!("no valid consistency proof from size {} to {}", old.size, new.size),
                    old,
                    &new,
                    Some(&proof),
                ));
            }
        }
        since = format!("consistent with size {}", old.size);
    }

    let now = jiff::Timestamp::now().as_second();
    let cos = Cosignature::sign(&state.witness, &new, now, &witness_key)?;
    let res = http
        .post(format!("{base}/api/v1/audit/cosignatures"))
        .bearer_auth(token)
        .json(&cos)
        .send()
        .await?;
    if !res.status().is_success() {
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        return Err(anyhow!(
            "the platform did not accept the cosignature ({status}): {body}"
        ));
    }
    println!(
        "witnessed: size {} root {} ({since}); cosigned as {} with key {}",
        new.size,
        new.root,
        state.witness,
        key_id(&witness_key.verifying_key())
    );
    state.checkpoint = Some(new);
    save(state_path, &state)
}
