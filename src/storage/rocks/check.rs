//! Checking and repairing the store: `verify` reads every block of every
//! column family with its checksum checked (run in the background after a
//! start, so a corrupted file turns readiness false with a message instead
//! of failing reads one by one later); `repair` is `tracemap repair`, RocksDB's
//! repairer over a stopped store, keeping whatever can still be read.

use std::path::Path;

use rocksdb::{Options, ReadOptions, DB};

use super::RocksStore;
use crate::storage::keys::ALL_CFS;
use crate::storage::StorageError;

impl RocksStore {
    /// Reads every entry of every column family, checksums verified, without
    /// filling the block cache; the number of entries, or the first error
    /// (`Corrupt` when RocksDB says the data is). Stops early, with what it
    /// counted, once `stop` says so (a shutdown should not wait for it).
    pub fn verify(&self, stop: &dyn Fn() -> bool) -> Result<u64, StorageError> {
        let mut entries = 0;
        for name in ALL_CFS {
            let mut options = ReadOptions::default();
            options.set_verify_checksums(true);
            options.fill_cache(false);
            let mut iter = self.db.raw_iterator_cf_opt(self.cf(name), options);
            iter.seek_to_first();
            while iter.valid() {
                entries += 1;
                if entries % 4096 == 0 && stop() {
                    return Ok(entries);
                }
                iter.next();
            }
            iter.status().map_err(|e| classify(name, e))?;
        }
        Ok(entries)
    }

    /// Runs RocksDB's repairer on the stopped store at `path`: files that can
    /// be read are kept, the rest moved to `lost/`, the manifest rebuilt.
    pub fn repair(path: &Path) -> Result<(), StorageError> {
        if !path.join("CURRENT").is_file() {
            return Err(StorageError::Engine(format!(
                "{} holds no tracemap store",
                path.display()
            )));
        }
        // The graph's merge operator, for any merge operands the repairer
        // writes out of the write-ahead log; the other families merge nothing.
        let mut options: Options = super::graph::options(Options::default());
        options.create_if_missing(false);
        DB::repair(&options, path)?;
        Ok(())
    }
}

fn classify(cf: &str, error: rocksdb::Error) -> StorageError {
    let message = format!("column family {cf}: {}", error.into_string());
    if message.contains("Corruption") {
        StorageError::Corrupt(message)
    } else {
        StorageError::Engine(message)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;
    use crate::storage::rocks::tests::minutely_traffic;
    use crate::storage::rocks::RocksOptions;
    use crate::storage::TraceStore;

    #[test]
    fn verify_reads_everything_and_names_a_damaged_file_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
            minutely_traffic(&store, 1_700_000_000_000_000, 200, 20);
            let entries = store.verify(&|| false).unwrap();
            // A chunk, a summary and index entries per trace at least.
            assert!(entries >= 200 * 3, "{entries}");
            assert!(store.verify(&|| true).unwrap() <= 4096);
            store.flush().unwrap();
        }
        let mut tables: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sst"))
            .collect();
        tables.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
        let largest = tables.pop().expect("a table file");
        let length = std::fs::metadata(&largest).unwrap().len();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&largest)
            .unwrap();
        file.seek(SeekFrom::Start(length / 3)).unwrap();
        file.write_all(&[0x5A; 4096]).unwrap();
        drop(file);
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        match store.verify(&|| false) {
            Err(StorageError::Corrupt(message)) => assert!(message.contains("Corruption")),
            other => panic!("{other:?}"),
        }
    }
}
