//! # shuyu-vault
//!
//! Where the domain's full data rests (DESIGN.md §1, §7; ). A dataset
//! version is written once as Parquet with **Parquet Modular Encryption**: footer
//! and every column encrypted with AES-256-GCM under a fresh 256-bit data key of
//! that version, with the version's id as additional authenticated data (a file
//! moved to another version does not decrypt). The data key is stored only
//! *wrapped* under the domain master key ([`shuyu_keyring`]); rotating the master
//! key re-wraps keys without rewriting data ([`Vault::rewrap`]); deleting the
//! wrapped key destroys the version (crypto-shredding). Objects go through
//! `object_store` (the local filesystem by default).
//!
//! Plaintext is read only by `shuyu-engine` ([`Vault::read`], [`Vault::open`]): the server does not
//! depend on this crate, so no HTTP handler can name a decrypting function. Writes stage to a local file and become visible only when complete;
//! [`Vault::sweep`] removes what a crash left behind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use parquet::arrow::ArrowWriter;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::properties::WriterProperties;
use shuyu_keyring::{KeyringError, MasterKey};

/// What can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The object store failed.
    #[error("vault storage: {0}")]
    Storage(#[from] object_store::Error),
    /// Parquet encoding or encryption failed.
    #[error("vault encoding: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A staging file could not be written.
    #[error("vault staging file: {0}")]
    Io(#[from] std::io::Error),
    /// A key could not be made, wrapped or unwrapped (wrong master key?).
    #[error(transparent)]
    Key(#[from] KeyringError),
    /// A column asked for is not in the object.
    #[error("the stored object has no column {0}")]
    NoColumn(String),
}

/// The key id of a workspace's sample: its data key's purpose and the file's AAD are bound
/// to it, so a sample file cannot pass for a dataset version or another sample.
pub fn sample_key_id(sample_id: &str) -> String {
    format!("{sample_id}.sample")
}

/// The purpose label a version's data key is wrapped under (binds the wrapped key to its version).
pub fn key_purpose(version_id: &str) -> String {
    format!("shuyu/dataset-version-key/v1/{version_id}")
}

/// A stored, sealed version: where it is and how to open it (with the master key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The object's path in the vault.
    pub path: String,
    /// The version's data key, wrapped under the master key.
    pub wrapped_key: String,
    /// Rows written.
    pub rows: u64,
    /// Bytes stored.
    pub bytes: u64,
}

/// The last `bytes` of an object of `total` bytes, read as if it were the whole file
/// (the Parquet footer reader asks only for offsets inside it, or fails and we read more).
struct Tail {
    offset: u64,
    total: u64,
    bytes: bytes::Bytes,
}

impl parquet::file::reader::Length for Tail {
    fn len(&self) -> u64 {
        self.total
    }
}

impl parquet::file::reader::ChunkReader for Tail {
    type T = bytes::buf::Reader<bytes::Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self
            .get_bytes(start, (self.total - start.min(self.total)) as usize)?
            .reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let from = start
            .checked_sub(self.offset)
            .ok_or_else(|| parquet::errors::ParquetError::NeedMoreData((self.offset - start) as usize))?
            as usize;
        let to = from.saturating_add(length);
        if to > self.bytes.len() {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{to} > {}",
                self.bytes.len()
            )));
        }
        Ok(self.bytes.slice(from..to))
    }
}

/// A stored object opened for reading ([`Vault::open`]): its bytes and its decrypted footer.
/// Each row group decodes on its own, so a reader can spread them over threads and still
/// know every row's position in the object (the rows of the groups before it).
pub struct Opened {
    bytes: bytes::Bytes,
    metadata: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    mask: Option<parquet::arrow::ProjectionMask>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("row_groups", &self.row_groups())
            .finish_non_exhaustive()
    }
}

impl Opened {
    /// How many row groups the object has.
    pub fn row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// Rows in row group `group` (0 past the last).
    pub fn rows_in(&self, group: usize) -> u64 {
        let m = self.metadata.metadata();
        if group < m.num_row_groups() {
            m.row_group(group).num_rows().max(0) as u64
        } else {
            0
        }
    }

    /// Decodes (and decrypts) row group `group`'s projected columns, in row order.
    pub fn decode(&self, group: usize) -> Result<Vec<RecordBatch>, VaultError> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(self.bytes.clone(), self.metadata.clone())
            .with_row_groups(vec![group]);
        if let Some(mask) = &self.mask {
            builder = builder.with_projection(mask.clone());
        }
        let reader = builder.with_batch_size(64 * 1024).build()?;
        Ok(reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(parquet::errors::ParquetError::from)?)
    }
}

/// The data vault of one installation.
#[derive(Debug, Clone)]
pub struct Vault {
    objects: Arc<dyn ObjectStore>,
    staging: PathBuf,
    master: MasterKey,
}

/// A version being written: rows go to an encrypted staging file; nothing is visible until [`Vault::seal`].
pub struct Writer {
    inner: ArrowWriter<std::fs::File>,
    staging: PathBuf,
    path: String,
    wrapped_key: String,
    rows: u64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Appends rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), VaultError> {
        self.inner.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

fn random_key() -> Result<Vec<u8>, VaultError> {
    let mut k = vec![0u8; 32];
    getrandom::fill(&mut k).map_err(|e| KeyringError::Random(e.to_string()))?;
    Ok(k)
}

impl Vault {
    /// A vault in `DATA_DIR/vault`, staging in `DATA_DIR/vault-staging`.
    pub fn local(data_dir: &Path, master: MasterKey) -> Result<Vault, VaultError> {
        let root = data_dir.join("vault");
        let staging = data_dir.join("vault-staging");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&staging)?;
        Ok(Vault {
            objects: Arc::new(LocalFileSystem::new_with_prefix(root)?),
            staging,
            master,
        })
    }

    /// A vault over any object store (S3-compatible, MinIO, OSS …).
    pub fn new(objects: Arc<dyn ObjectStore>, staging: PathBuf, master: MasterKey) -> Vault {
        Vault {
            objects,
            staging,
            master,
        }
    }

    /// Starts writing object `path` of version `version_id` with `schema`, under a fresh data key.
    pub fn writer(&self, version_id: &str, path: &str, schema: SchemaRef) -> Result<Writer, VaultError> {
        self.writer_with(version_id, path, schema, &[])
    }

    /// [`Vault::writer`], with the columns named in `unique` stored without a dictionary:
    /// columns whose values are (nearly) all distinct — entity numbers, fingerprints — where
    /// trying a dictionary only costs time before Parquet falls back to plain values.
    pub fn writer_with(
        &self,
        version_id: &str,
        path: &str,
        schema: SchemaRef,
        unique: &[&str],
    ) -> Result<Writer, VaultError> {
        let key = random_key()?;
        let wrapped_key = self.master.wrap(&key_purpose(version_id), &key)?;
        let encryption = FileEncryptionProperties::builder(key)
            .with_aad_prefix(version_id.as_bytes().to_vec())
            .with_aad_prefix_storage(false)
            .build()?;
        let mut props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(256 * 1024))
            .with_file_encryption_properties(encryption);
        for c in unique {
            props = props.set_column_dictionary_enabled(parquet::schema::types::ColumnPath::from(*c), false);
        }
        let props = props.build();
        let staging = self.staging.join(format!("{}.parquet.part", path.replace('/', "_")));
        let file = std::fs::File::create(&staging)?;
        let inner = ArrowWriter::try_new(file, schema, Some(props))?;
        Ok(Writer {
            inner,
            staging,
            path: path.to_string(),
            wrapped_key,
            rows: 0,
        })
    }

    /// Finishes a version and stores it; returns where it is and its wrapped key.
    /// If this fails, nothing is stored (the staging file is removed).
    pub async fn seal(&self, w: Writer) -> Result<Sealed, VaultError> {
        let Writer {
            inner,
            staging,
            path,
            wrapped_key,
            rows,
        } = w;
        let result = async {
            inner.close()?;
            let bytes = std::fs::metadata(&staging)?.len();
            let location = ObjectPath::from(path.as_str());
            let upload = self.objects.put_multipart(&location).await?;
            let mut out = WriteMultipart::new(upload);
            let mut f = tokio::fs::File::open(&staging).await?;
            let mut buf = vec![0u8; 4 * 1024 * 1024];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf).await?;
                if n == 0 {
                    break;
                }
                // Back-pressure: at most a few parts in flight, so memory stays bounded
                // by the part size, not by the size of the version.
                out.wait_for_capacity(2).await?;
                out.write(&buf[..n]);
            }
            out.finish().await?;
            Ok::<_, VaultError>(bytes)
        }
        .await;
        let _ = std::fs::remove_file(&staging);
        let bytes = result?;
        Ok(Sealed {
            path,
            wrapped_key,
            rows,
            bytes,
        })
    }

    /// Abandons a version being written: nothing is stored.
    pub fn abandon(&self, w: Writer) {
        let staging = w.staging.clone();
        drop(w);
        let _ = std::fs::remove_file(staging);
    }

    /// Deletes a stored object (the caller deletes its wrapped key with it: crypto-shredding).
    pub async fn delete(&self, path: &str) -> Result<(), VaultError> {
        match self.objects.delete(&ObjectPath::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Re-wraps a version's data key under `new_master` (master-key rotation; data is not rewritten).
    pub fn rewrap(&self, version_id: &str, wrapped: &str, new_master: &MasterKey) -> Result<String, VaultError> {
        Ok(self.master.rewrap(&key_purpose(version_id), wrapped, new_master)?)
    }

    /// Opens a stored object's encrypted footer with its wrapped key and returns its row count —
    /// proof that key and object belong together (after a master-key rotation, in a health check)
    /// without decrypting a single value. Reads only the file's tail.
    pub async fn verify_object(&self, version_id: &str, path: &str, wrapped: &str) -> Result<u64, VaultError> {
        self.verify_with_tail(version_id, path, wrapped, 1 << 20).await
    }

    async fn verify_with_tail(
        &self,
        version_id: &str,
        path: &str,
        wrapped: &str,
        first: u64,
    ) -> Result<u64, VaultError> {
        let key = zeroize::Zeroizing::new(self.master.unwrap(&key_purpose(version_id), wrapped)?);
        let location = ObjectPath::from(path);
        let total = self.objects.head(&location).await?.size;
        let decryption = parquet::encryption::decrypt::FileDecryptionProperties::builder(key.to_vec())
            .with_aad_prefix(version_id.as_bytes().to_vec())
            .build()?;
        // The footer of our files is small; read a tail, and the whole object only if it is not enough.
        let mut want = total.min(first);
        loop {
            let start = total - want;
            let bytes = self.objects.get_range(&location, start..total).await?;
            let tail = Tail {
                offset: start,
                total,
                bytes,
            };
            match parquet::file::metadata::ParquetMetaDataReader::new()
                .with_decryption_properties(Some(decryption.clone()))
                .parse_and_finish(&tail)
            {
                Ok(meta) => return Ok(meta.file_metadata().num_rows().max(0) as u64),
                Err(_) if want < total => want = total,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Checks that a wrapped key opens with this vault's master key (a wrong master key fails clearly).
    pub fn check_key(&self, version_id: &str, wrapped: &str) -> Result<(), VaultError> {
        self.master
            .unwrap(&key_purpose(version_id), wrapped)
            .map(|_| ())
            .map_err(VaultError::from)
    }

    /// After a crash: removes staging files, and stored objects no version refers to
    /// (`known` paths). Returns how many objects were removed.
    pub async fn sweep(&self, known: &HashSet<String>) -> Result<usize, VaultError> {
        if let Ok(entries) = std::fs::read_dir(&self.staging) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let listed: Vec<object_store::ObjectMeta> = self.objects.list(None).try_collect().await?;
        let mut removed = 0;
        for meta in listed {
            if !known.contains(meta.location.as_ref()) {
                tracing::warn!(object = %meta.location, "removing an orphan vault object");
                self.objects.delete(&meta.location).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Reads a stored object's rows — only `columns` when given (a column not in the file is
    /// an error naming it). **Only the engine calls this** (DESIGN.md §1): the server does not
    /// depend on this crate, so no handler can reach it.
    /// `key_id` is the id the object was written under ([`Vault::writer`]).
    pub async fn read(
        &self,
        key_id: &str,
        path: &str,
        wrapped: &str,
        columns: Option<&[String]>,
    ) -> Result<Vec<RecordBatch>, VaultError> {
        let opened = self.open(key_id, path, wrapped, columns).await?;
        let mut out = Vec::new();
        for g in 0..opened.row_groups() {
            out.extend(opened.decode(g)?);
        }
        Ok(out)
    }

    /// Opens a stored object for reading: fetches it and decrypts its footer once, so that
    /// its row groups can then be decoded independently — on as many threads as the engine
    /// gives them ([`Opened::decode`]). Same rules as [`Vault::read`]: only the engine calls it.
    pub async fn open(
        &self,
        key_id: &str,
        path: &str,
        wrapped: &str,
        columns: Option<&[String]>,
    ) -> Result<Opened, VaultError> {
        use parquet::arrow::ProjectionMask;
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
        use parquet::encryption::decrypt::FileDecryptionProperties;
        let key = zeroize::Zeroizing::new(self.master.unwrap(&key_purpose(key_id), wrapped)?);
        let bytes = self.objects.get(&ObjectPath::from(path)).await?.bytes().await?;
        let props = FileDecryptionProperties::builder(key.to_vec())
            .with_aad_prefix(key_id.as_bytes().to_vec())
            .build()?;
        let options = ArrowReaderOptions::new().with_file_decryption_properties(props);
        let metadata = ArrowReaderMetadata::load(&bytes, options)?;
        let mask = match columns {
            Some(columns) => {
                let schema = metadata.schema();
                let mut roots = Vec::with_capacity(columns.len());
                for c in columns {
                    let i = schema.index_of(c).map_err(|_| VaultError::NoColumn(c.clone()))?;
                    roots.push(i);
                }
                Some(ProjectionMask::roots(metadata.parquet_schema(), roots))
            }
            None => None,
        };
        Ok(Opened { bytes, metadata, mask })
    }

    #[cfg(test)]
    async fn read_for_test(&self, version_id: &str, sealed: &Sealed) -> Result<Vec<RecordBatch>, VaultError> {
        self.read(version_id, &sealed.path, &sealed.wrapped_key, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(names: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(names.to_vec())),
                Arc::new(Int64Array::from((0..names.len() as i64).collect::<Vec<_>>())),
            ],
        )
        .expect("batch")
    }

    fn files_contain(dir: &Path, needle: &[u8]) -> bool {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
                    return true;
                }
            }
        }
        false
    }

    #[tokio::test]
    async fn versions_are_ciphertext_bound_to_their_key_and_version() {
        let dir = tempfile::tempdir().expect("tmp");
        let vault = Vault::local(dir.path(), MasterKey::from_bytes([5u8; 32])).expect("vault");
        let canary = "379901199003071234";
        let b = batch(&[canary, "379902198512120021"]);
        let mut w = vault
            .writer("v1", "datasets/population/v1.parquet", b.schema())
            .expect("writer");
        w.write(&b).expect("write");
        let sealed = vault.seal(w).await.expect("seal");
        assert_eq!(sealed.rows, 2);
        // No plaintext value, and not the column name either, appears in any file of the data dir.
        assert!(!files_contain(dir.path(), canary.as_bytes()));
        assert!(!files_contain(dir.path(), b"person_id"));
        // The right key reads it back.
        let back = vault.read_for_test("v1", &sealed).await.expect("read");
        assert_eq!(back[0], b);
        // Another version id (AAD) or another master key does not.
        assert!(vault.read_for_test("v2", &sealed).await.is_err());
        let wrong = Vault::local(dir.path(), MasterKey::from_bytes([6u8; 32])).expect("vault");
        let err = wrong
            .check_key("v1", &sealed.wrapped_key)
            .expect_err("wrong master key");
        assert!(err.to_string().contains("wrong master key"), "{err}");
        // Rotation re-wraps the key; the data still reads with the new master key.
        let new_master = MasterKey::from_bytes([7u8; 32]);
        let rewrapped = vault.rewrap("v1", &sealed.wrapped_key, &new_master).expect("rewrap");
        let rotated = Vault::local(dir.path(), new_master).expect("vault");
        let resealed = Sealed {
            wrapped_key: rewrapped,
            ..sealed.clone()
        };
        assert_eq!(rotated.read_for_test("v1", &resealed).await.expect("read")[0], b);
        // The footer check opens the object with its key and counts rows, and fails with any other key.
        assert_eq!(
            rotated
                .verify_object("v1", &sealed.path, &resealed.wrapped_key)
                .await
                .expect("verify"),
            2
        );
        assert!(
            vault
                .verify_object("v1", &sealed.path, &resealed.wrapped_key)
                .await
                .is_err()
        );
        assert!(
            rotated
                .verify_object("v2", &sealed.path, &resealed.wrapped_key)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_footer_check_reads_more_when_the_tail_is_too_short() {
        let dir = tempfile::tempdir().expect("tmp");
        let vault = Vault::local(dir.path(), MasterKey::from_bytes([5u8; 32])).expect("vault");
        let values: Vec<String> = (0..3000).map(|i| format!("v{i:05}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let b = batch(&refs);
        let mut w = vault
            .writer("big", "datasets/x/big.parquet", b.schema())
            .expect("writer");
        for _ in 0..50 {
            w.write(&b).expect("write");
        }
        let sealed = vault.seal(w).await.expect("seal");
        // A 16-byte tail holds the footer's length but not the footer.
        assert_eq!(
            vault
                .verify_with_tail("big", &sealed.path, &sealed.wrapped_key, 16)
                .await
                .expect("verify"),
            150_000
        );
    }

    #[tokio::test]
    async fn a_crash_leaves_nothing_after_a_sweep() {
        let dir = tempfile::tempdir().expect("tmp");
        let vault = Vault::local(dir.path(), MasterKey::from_bytes([5u8; 32])).expect("vault");
        let b = batch(&["a"]);
        let mut kept = vault.writer("k", "datasets/x/k.parquet", b.schema()).expect("writer");
        kept.write(&b).expect("write");
        let kept = vault.seal(kept).await.expect("seal");
        let mut orphan = vault.writer("o", "datasets/x/o.parquet", b.schema()).expect("writer");
        orphan.write(&b).expect("write");
        let orphan = vault.seal(orphan).await.expect("seal");
        let mut half = vault.writer("h", "datasets/x/h.parquet", b.schema()).expect("writer");
        half.write(&b).expect("write");
        std::mem::forget(half); // the process died mid-write
        let known: HashSet<String> = [kept.path.clone()].into();
        assert_eq!(vault.sweep(&known).await.expect("sweep"), 1);
        assert!(
            std::fs::read_dir(dir.path().join("vault-staging"))
                .expect("dir")
                .next()
                .is_none()
        );
        assert!(vault.read_for_test("k", &kept).await.is_ok());
        assert!(vault.read_for_test("o", &orphan).await.is_err());
    }
}
