//! What the engine's benchmarks share: the demo city's population generated and imported into
//! an encrypted vault, as a provider's upload would be.

use shuyu_import::{Column, Options, import_file};
use shuyu_keyring::MasterKey;
use shuyu_vault::{Sealed, Vault};

/// The population imported as version `v1`: the runtime, the vault, the sealed version and its
/// classified columns. `dir` holds the files (keep it alive while measuring).
pub fn stored_population(dir: &std::path::Path) -> (tokio::runtime::Runtime, Vault, Sealed, Vec<Column>) {
    let info = shuyu_democity::bench_dataset(dir, "population")
        .expect("generate")
        .expect("population");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let vault = Vault::local(&dir.join("vault"), MasterKey::from_bytes([7u8; 32])).expect("vault");
    let imported = rt
        .block_on(import_file(
            &dir.join(&info.file),
            &Options::default(),
            &vault,
            "v1",
            "population.parquet",
        ))
        .expect("import");
    let sealed = imported.data.expect("rows");
    (rt, vault, sealed, imported.report.columns)
}
