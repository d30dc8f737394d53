//! Documents the domain issues and signs (scenario manifests, later release certificates),
//! so anyone holding the domain's published public key can check them offline. The key
//! lives with the audit ledger; services above it only see this trait.

/// Signs a message with the domain's Ed25519 key.
pub trait DocumentSigner: Send + Sync + 'static {
    /// The signature over `message`, base64 (standard alphabet, padded).
    fn sign(&self, message: &[u8]) -> String;
    /// The public key that verifies it, SPKI PEM (the audit log's `log-public-key.pem`).
    fn public_key_pem(&self) -> String;
}
